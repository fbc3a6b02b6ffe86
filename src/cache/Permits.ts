/**
 * The permits that bound a cache's concurrent loads (`lookupConcurrency`): at most `n` run at once,
 * the others wait in the order they asked, and each permit given back goes to the first waiter.
 *
 * Not Effect's `Semaphore`: a release there wakes every waiter (the free count only drops once a
 * woken fiber runs), and all but one wait again, so N loads behind 8 permits cost O(N²) wake-ups
 * and allocations: a compile over 4,000 caller sources spent 35 s and 2.8 GB in it (1,000: 1.3 s).
 * Here a release wakes one waiter: O(1).
 */
import { Effect, Exit } from "effect"

/** One caller's place: granted once a permit is its own. */
interface Ticket {
  granted: boolean
  wake: () => void
}

export class Permits {
  private free: number
  /** Waiters in arrival order (a Set: an interrupted waiter leaves in O(1)). */
  private readonly waiting = new Set<Ticket>()

  constructor(permits: number) {
    this.free = permits
  }

  /** Runs `effect` holding a permit; waiting for one is interruptible, and the permit is given back on every outcome. */
  withPermit<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.uninterruptibleMask((restore) => {
      const ticket: Ticket = { granted: false, wake: () => {} }
      return restore(this.acquire(ticket)).pipe(
        // Interrupted while waiting: leave the queue, or pass on the permit if it came meanwhile.
        Effect.onExit((exit) => (Exit.isFailure(exit) ? Effect.sync(() => this.cancel(ticket)) : Effect.void)),
        Effect.zipRight(Effect.ensuring(restore(effect), Effect.sync(() => this.release())))
      )
    })
  }

  private acquire(ticket: Ticket): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      if (this.free > 0) {
        this.free--
        ticket.granted = true
        resume(Effect.void)
        return
      }
      ticket.wake = () => {
        ticket.granted = true
        resume(Effect.void)
      }
      this.waiting.add(ticket)
    })
  }

  private cancel(ticket: Ticket): void {
    if (ticket.granted) this.release()
    else this.waiting.delete(ticket)
  }

  /** A permit given back: the first waiter's now, else free. */
  private release(): void {
    const next = this.waiting.values().next()
    if (next.done === true) {
      this.free++
      return
    }
    this.waiting.delete(next.value)
    next.value.wake()
  }
}
