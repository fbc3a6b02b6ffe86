/**
 * Running a round of effects concurrently under one deadline, cheaply; and giving the event loop a
 * turn in the middle of long work.
 *
 * Measured on effect 3.22 (Node 20): a child fiber costs about 15 µs to fork and join (its FiberRefs
 * are copied on fork and merged on join), interrupting a fiber 20-45 µs, and `Effect.timeoutOption`
 * (a race of two forked fibers, the loser interrupted) about 45 µs even around an effect that
 * answers at once. A fiber started with `Runtime.runFork` on the caller's runtime (same context,
 * FiberRefs and `Clock`) and watched through an observer costs 1.5-4 µs, and a plain timer 1 µs. A
 * compile runs one or two rounds of store queries, each under `queryTimeout`: with `allWithin`
 * instead of forked fibers + `timeoutOption`, a cached compile through the Promise facade went from
 * 110 µs to 64 µs (bench w4, `facadeCompileOverheadNs`).
 */
import { Clock, Duration, Effect, Exit, type Fiber, FiberId, Option, Runtime } from "effect"

/** The class of Effect's live clock, whose `sleep` is a `setTimeout`. */
const LiveClock = Clock.make().constructor
/** Node's timers overflow past this (as Effect's own clock, no timer is set beyond it). */
const MAX_TIMER_MILLIS = 2 ** 31 - 1

/**
 * Calls `f` once `duration` has passed on `clock`; returns what cancels it. On the live clock a plain
 * timer; on any other (`TestClock`) a fiber that sleeps on it, so tests drive the deadline.
 */
const schedule = (run: ReturnType<typeof Runtime.runFork<never>>, clock: Clock.Clock, duration: Duration.Duration, f: () => void): (() => void) => {
  if (clock.constructor === LiveClock) {
    const millis = Duration.toMillis(duration)
    if (millis > MAX_TIMER_MILLIS) return () => {}
    const handle = setTimeout(f, millis)
    return () => clearTimeout(handle)
  }
  const sleeper = run(clock.sleep(duration))
  sleeper.addObserver((exit) => Exit.isSuccess(exit) && f())
  return () => sleeper.unsafeInterruptAsFork(FiberId.none)
}

/**
 * Runs every effect in a fiber of its own and waits until all have finished or `within` has passed
 * on the `Clock`. Succeeds with each effect's value, or `None` for one still running at the deadline
 * (it is interrupted, not awaited). The first failure fails the round at once and interrupts the
 * others. When the calling fiber ends first (it was interrupted), they are interrupted too: an
 * observer on that fiber does it, because a canceler returned to `Effect.async` wraps the wait in
 * `onInterrupt`, which costs as much again as the whole round.
 */
export const allWithin = <A, E>(effects: ReadonlyArray<Effect.Effect<A, E>>, within: Duration.Duration): Effect.Effect<Array<Option.Option<A>>, E> =>
  effects.length === 0
    ? Effect.succeed([])
    : Effect.withFiberRuntime((caller, status) =>
        Effect.clockWith((clock) =>
          Effect.async<Array<Option.Option<A>>, E>((resume) => {
            const run = Runtime.runFork(Runtime.make({ context: caller.currentContext, fiberRefs: caller.getFiberRefs(), runtimeFlags: status.runtimeFlags }))
            const values: Array<Option.Option<A>> = effects.map(() => Option.none())
            const fibers: Array<Fiber.RuntimeFiber<A, E>> = []
            let pending = effects.length
            let finished = false
            let cancelTimer = () => {}
            const stop = () => {
              finished = true
              cancelTimer()
              caller.removeObserver(stop)
              for (const fiber of fibers) if (fiber.unsafePoll() === null) fiber.unsafeInterruptAsFork(FiberId.none)
            }
            const finish = (result: Effect.Effect<Array<Option.Option<A>>, E>) => {
              if (finished) return
              stop()
              resume(result)
            }
            for (let i = 0; i < effects.length && !finished; i++) {
              const fiber = run(effects[i]!)
              fibers.push(fiber)
              fiber.addObserver((exit) => {
                if (Exit.isFailure(exit)) return finish(Effect.failCause(exit.cause))
                values[i] = Option.some(exit.value)
                if (--pending === 0) finish(Effect.succeed(values))
              })
            }
            if (!finished) {
              cancelTimer = schedule(run, clock, within, () => finish(Effect.succeed(values)))
              caller.addObserver(stop)
            }
          })
        )
      )

/**
 * One turn of the event loop (`setImmediate`: past its timers and its poll phase, where I/O and
 * signals are heard). Long synchronous work cut into slices yields this between them.
 */
export const eventLoopTurn: Effect.Effect<void> = Effect.async<void>((resume) => {
  const turn = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(turn))
})

/** The work waiting for a turn of its own (`inTurnOfItsOwn`), first come first served. */
const waitingForTurn: Array<() => void> = []
let turnScheduled = false
const nextTurn = () => {
  const task = waitingForTurn.shift()
  // An immediate set from inside one runs in the next iteration of the loop, past its timers and I/O.
  if (waitingForTurn.length > 0) setImmediate(nextTurn)
  else turnScheduled = false
  task?.()
}

/**
 * Runs `f` (long synchronous work: a search over a large source) in a turn of the event loop of its
 * own: at most one such piece a turn, the others waiting in order for the next turns, so that
 * timers, I/O and signals are served between any two of them. Interrupted while it waits, `f` does
 * not run.
 */
export const inTurnOfItsOwn = <A>(f: () => A): Effect.Effect<A> =>
  Effect.async<A>((resume) => {
    let cancelled = false
    waitingForTurn.push(() => {
      if (cancelled) return
      try {
        resume(Effect.succeed(f()))
      } catch (e) {
        resume(Effect.die(e))
      }
    })
    if (!turnScheduled) {
      turnScheduled = true
      setImmediate(nextTurn)
    }
    return Effect.sync(() => void (cancelled = true))
  })
