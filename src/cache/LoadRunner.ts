/**
 * The load runner of a cache: runs lookups (and reloads) in fibers the cache owns, in the
 * environment the cache was built in, and hands every outcome (interruption included) to `settle`.
 * Starting a load launches it: `start` forks at once, and `batch` forks the loads its step decided
 * when the step ends (first loads together through `lookupMany`), so no caller can leave a load
 * queued and its waiters hanging.
 */
import { Effect, Exit, Fiber, FiberId, Runtime } from "effect"
import type * as M from "../metrics.js"
import type { Entry } from "./Entries.js"
import type { Permits } from "./Permits.js"
import type * as EntryState from "./EntryState.js"

/** Computes the values of several keys in one call, one value per key in their order. */
export type LookupMany<K, V, E> = (keys: ReadonlyArray<K>) => Effect.Effect<ReadonlyArray<V>, E, any>

/**
 * One load: of `entry`'s key, into `state`, reloading `previous` if `reloading`, with the caller's
 * own `lookup` if given, and `many`, the caller's own batch lookup its first load shares with the
 * other first loads of the same step.
 */
export interface Load<K, V, E> {
  readonly entry: Entry<K, V, E>
  readonly state: EntryState.InFlight<V, E>
  readonly previous: V | undefined
  readonly reloading: boolean
  readonly lookup: (() => Effect.Effect<V, E>) | undefined
  readonly many?: LookupMany<K, V, E> | undefined
}

export interface LoadRunnerOptions<K, V, E> {
  readonly lookup: (key: K) => Effect.Effect<V, E, any>
  readonly lookupMany: LookupMany<K, V, E> | undefined
  readonly reload: ((key: K, previous: V) => Effect.Effect<V, E, any>) | undefined
  readonly permits: Permits | undefined
  readonly runtime: Runtime.Runtime<any>
  readonly label: string
  readonly metrics: M.CacheMetrics
  readonly now: () => number
  /** A load ended: record its result in its entry and answer its waiters. */
  readonly settle: (load: Load<K, V, E>, exit: Exit.Exit<V, E>) => void
}

export class LoadRunner<K, V, E> {
  private readonly running = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
  private closed = false
  private started = 0
  private reloads = 0

  constructor(private readonly options: LoadRunnerOptions<K, V, E>) {}

  /** Lookup and reload calls so far. */
  get loads(): number {
    return this.started
  }

  /** Of which reloads of a held value. */
  get refreshes(): number {
    return this.reloads
  }

  /** Starts one load now. */
  readonly start = (load: Load<K, V, E>): void => {
    if (this.refuse([load])) return
    this.fork(this.run([load], () => this.lookupOf(load), (exit) => this.options.settle(load, exit)))
  }

  /** Runs a synchronous step that decides loads (`begin` each), then starts them: first loads in one `lookupMany` call when there is one. */
  batch<A>(step: (begin: (load: Load<K, V, E>) => void) => A): A {
    const loads: Array<Load<K, V, E>> = []
    try {
      return step((load) => void loads.push(load))
    } finally {
      this.startAll(loads)
    }
  }

  /** Runs `effect` in a fiber of the cache (interrupted when the cache closes). */
  readonly fork = (effect: Effect.Effect<void>): void => {
    const fiber = Runtime.runFork(this.options.runtime)(effect)
    if (fiber.unsafePoll() !== null) return
    this.running.add(fiber)
    fiber.addObserver(() => this.running.delete(fiber))
  }

  /** Interrupts every load (their waiters with them) and refuses new ones. */
  close(): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.closed = true
      return Fiber.interruptAll([...this.running])
    })
  }

  private startAll(loads: ReadonlyArray<Load<K, V, E>>): void {
    if (loads.length === 0 || this.refuse(loads)) return
    // First loads go together through their batch lookup: the caller's own, else the cache's (for loads with no lookup of their own).
    const batches = new Map<LookupMany<K, V, E>, Array<Load<K, V, E>>>()
    const alone: Array<Load<K, V, E>> = []
    for (const load of loads) {
      const many = load.reloading ? undefined : (load.many ?? (load.lookup === undefined ? this.options.lookupMany : undefined))
      if (many === undefined) alone.push(load)
      else {
        const batch = batches.get(many)
        if (batch === undefined) batches.set(many, [load])
        else batch.push(load)
      }
    }
    for (const [many, batch] of batches) {
      if (batch.length === 1) alone.push(batch[0]!)
      else this.startBatch(batch, many)
    }
    for (const load of alone) this.start(load)
  }

  /** One call of `many` for the keys of `loads`; an answer of the wrong length fails every one of them. */
  private startBatch(loads: ReadonlyArray<Load<K, V, E>>, many: LookupMany<K, V, E>): void {
    const keys = loads.map((load) => load.entry.key)
    this.fork(
      this.run(loads, () => many(keys), (exit) => {
        const answered = Exit.isSuccess(exit) && exit.value.length !== keys.length ? Exit.die(this.wrongCount(exit.value.length, keys.length)) : exit
        loads.forEach((load, i) => this.options.settle(load, Exit.map(answered, (values) => values[i]!)))
      })
    )
  }

  /** After the cache closed, a load is settled as interrupted at once. */
  private refuse(loads: ReadonlyArray<Load<K, V, E>>): boolean {
    if (!this.closed) return false
    for (const load of loads) this.options.settle(load, Exit.interrupt(FiberId.none))
    return true
  }

  /** A reload of a held value uses the cache's `reload` when it has one (it knows how to update what it holds), else the caller's lookup (or batch lookup, for the one key), else the cache's. */
  private lookupOf(load: Load<K, V, E>): Effect.Effect<V, E, any> {
    const { lookup, reload } = this.options
    if (load.reloading && reload !== undefined) return reload(load.entry.key, load.previous as V)
    if (load.lookup !== undefined) return load.lookup()
    if (load.many !== undefined) {
      return Effect.flatMap(load.many([load.entry.key]), (values) => (values.length === 1 ? Effect.succeed(values[0]!) : Effect.die(this.wrongCount(values.length, 1))))
    }
    return lookup(load.entry.key)
  }

  private wrongCount(values: number, keys: number): Error {
    return new Error(`cache ${this.options.label}: lookupMany answered ${values} values for ${keys} keys`)
  }

  /** One lookup call for `loads`, under a permit; `done` on every outcome, interruption included, so no waiter is left hanging. */
  private run<A>(loads: ReadonlyArray<Load<K, V, E>>, call: () => Effect.Effect<A, E, any>, done: (exit: Exit.Exit<A, E>) => void): Effect.Effect<void> {
    const { permits, metrics, now, label } = this.options
    const startedAt = now()
    const lookup = Effect.suspend(() => {
      const reloads = loads.filter((load) => load.reloading).length
      this.started += loads.length
      this.reloads += reloads
      metrics.loads(loads.length)
      if (reloads > 0) metrics.refreshes(reloads)
      return call()
    }) as Effect.Effect<A, E>
    const single = loads.length === 1 ? loads[0]! : undefined
    return (permits === undefined ? lookup : permits.withPermit(lookup)).pipe(
      Effect.onExit((exit) =>
        Effect.sync(() => {
          metrics.loadDuration(now() - startedAt)
          done(exit)
        })
      ),
      Effect.ignore,
      Effect.withSpan(single === undefined ? "LoadingCache.loadMany" : "LoadingCache.load", {
        attributes: single === undefined
          ? { cache: label, keys: loads.length }
          : { cache: label, key: String(single.entry.key), refresh: single.reloading },
        captureStackTrace: false
      })
    )
  }
}
