/**
 * LoadingCache: the one cache engine of the project. It **is** an Effect `Cache`: it implements
 * every member of `Cache.Cache<Key, Value, Error>` and is built with `Cache.makeWith`'s options
 * (`capacity`, `lookup`, `timeToLive(exit)`), plus what Effect 3's cache lacks: weights, adaptive
 * W-TinyLFU eviction, refresh-ahead, stale-if-error, a background sweep, batched `getMany` and
 * metrics. The catalog, the store managers, the embeddings and the SQL query results all use it.
 *
 * Contract
 * - A **hit** is a request served a value without waiting for any load; a **miss** waits for one,
 *   or gets a remembered failure. `hits + misses` = requests; `loads` = lookup (or reload) calls.
 * - **Single-flight**: at most one load per key at a time, for any mix of `get`, `getMany`,
 *   `refresh`, `getOption`, and a key repeated in one `getMany`. The decision to load and the new
 *   entry state are made in one synchronous step, so no caller can see "no load yet" after another
 *   caller decided to start one.
 * - **Loads run in fibers owned by the cache**, in the environment the cache was built in, and are
 *   interrupted when the cache's scope closes. A caller that is interrupted (a timeout, an aborted
 *   request) stops waiting; the load and the other waiters never notice.
 * - **Time to live** comes from the load's `Exit` (`timeToLive`): a value for its TTL, a failure for
 *   its own (often shorter) one; 0 keeps nothing. TTL is checked on access and by the sweep.
 * - **Refresh-ahead**: a hit after `refreshAhead × ttl` reloads in the background (with `reload` if
 *   given, else `lookup`); callers keep the current value meanwhile.
 * - **Stale-if-error**: after its TTL a value is reloaded on access (callers wait); if that reload
 *   fails, the last value is served for up to `staleIfError` more, and no new reload is tried
 *   before the failure's TTL. A failed `refresh` never replaces a good value.
 * - **Invalidation** (`invalidate`, `invalidateWhen`, `invalidateAll`) drops entries at once; a load
 *   already running still answers its waiters, but its result is not cached.
 * - **Bounds**: at most `capacity` entries and, with a `weigher`, at most `maxWeight` total weight;
 *   adaptive W-TinyLFU chooses what to evict (`WindowTinyLfu.ts`), or plain LRU while W-TinyLFU
 *   has not shown it would hit more (`PolicyDuel.ts`; a cache with no bound on its count always uses W-TinyLFU).
 * - Keys are compared as `Map` keys (strings and numbers by value, objects by reference), not with
 *   `Equal`: use string or number keys.
 * - The cache reads the `Clock` of the fiber that builds it (build it after `TestClock` is in place).
 *
 * Why not Effect 3's `Cache` (measured on effect 3.22.4, docs/decisions/cache-engine.md): its
 * eviction evicts hot keys (every load leaves a stale node in its access list; on a Zipf(1.0) trace
 * over 1,000 keys at capacity 100 it hits 38 % where LRU hits 58 % and this engine 66 %); that list
 * grows on every reload (a capacity-1 cache: 5,002 nodes after 2,000 reloads); a failed refresh
 * replaces the good value; an interrupted first caller fails every waiter; `invalidate` cannot stop
 * an in-flight lookup from being cached; and it has no weights, no eviction or load counters.
 */
import { Cache, Cause, type Clock, Deferred, Duration, Effect, Either, Exit, Fiber, FiberId, Option, Runtime, Schedule, type Scope } from "effect"
import * as M from "../metrics.js"
import { hashKey } from "./FrequencySketch.js"
import { type EvictionPolicy, PolicyDuel } from "./PolicyDuel.js"
import { Region, type PolicyNode, WindowTinyLfu } from "./WindowTinyLfu.js"

export interface LoadingCacheOptions<Key, Value, Error = never, R = never> {
  /** Most entries held, as `Cache.makeWith`'s `capacity` (`Infinity`: no bound on the count). */
  readonly capacity: number
  /** Computes a missing value, as `Cache.makeWith`'s `lookup`. */
  readonly lookup: Cache.Lookup<Key, Value, Error, R>
  /**
   * Computes several missing values in one call (one model call for many texts, one query for many
   * rows): `getMany` uses it for the keys it has to load, in the order given; the answer must have
   * one value per key. Default: `lookup` for each key, concurrently.
   */
  readonly lookupMany?: (keys: ReadonlyArray<Key>) => Effect.Effect<ReadonlyArray<Value>, Error, R>
  /** How long a load's result is served, from its `Exit`: a value's TTL and a failure's TTL. */
  readonly timeToLive: (exit: Exit.Exit<Value, Error>) => Duration.DurationInput
  /** The weight of a value (bytes, say): with `maxWeight`, the total weight is bounded. Default: 1 each. */
  readonly weigher?: (key: Key, value: Value) => number
  /** The bound on the total weight (needs `weigher`). */
  readonly maxWeight?: number
  /** Fraction of the TTL after which a hit reloads in the background; 1 (the default) never does. */
  readonly refreshAhead?: number
  /** How long past its TTL a value may still be served while reloading it fails (default 0: never). */
  readonly staleIfError?: Duration.DurationInput
  /** How often a background fiber drops entries that can no longer be served (default: only on access). */
  readonly sweepInterval?: Duration.DurationInput
  /** Most loads running at once across all callers (default: no limit). */
  readonly lookupConcurrency?: number
  /** Reloads a key that holds a value (refresh-ahead, `refresh`, a reload after TTL); default `lookup`. */
  readonly reload?: (key: Key, previous: Value) => Effect.Effect<Value, Error, R>
  /** The `cache` label of this cache's metrics (default `"cache"`). */
  readonly label?: string
}

/** `Cache.CacheStats` and the counters Effect's cache lacks, since the cache was built. */
export interface LoadingCacheStats extends Cache.CacheStats {
  readonly loads: number
  readonly loadFailures: number
  readonly evictions: number
  readonly expirations: number
  readonly invalidations: number
  readonly refreshes: number
  readonly staleServed: number
  /** Total weight held (the number of entries when there is no weigher). */
  readonly weight: number
  /** hits / (hits + misses), 0 before any request. */
  readonly hitRate: number
  /** The eviction serving now: `"lru"` until W-TinyLFU has shown it would hit more (`PolicyDuel.ts`); a cache with no bound on its count (`capacity: Infinity`) is always `"w-tinylfu"`. */
  readonly evictionPolicy: EvictionPolicy
}

export interface LoadingCache<in out Key, in out Value, out Error = never> extends Cache.Cache<Key, Value, Error> {
  /**
   * `get` with a lookup of this call's own for a miss (as Caffeine's `get(key, mappingFunction)`):
   * for values whose computation the key alone cannot name, such as a query's result.
   */
  getWith<E2 extends Error>(key: Key, lookup: () => Effect.Effect<Value, E2>): Effect.Effect<Value, Error>
  /**
   * Every key's value or load error, in the order asked. Loads that are needed start together
   * (single-flight holds across the batch and with every other caller); never fails as a whole.
   */
  getMany(keys: Iterable<Key>): Effect.Effect<Array<Either.Either<Value, Error>>>
  /** Counters since the cache was built. */
  readonly stats: Effect.Effect<LoadingCacheStats>
}

// ---------------------------------------------------------------------------------------------
// Entry state: one value per key, replaced (never mutated) on every transition, so a load that
// finishes can tell whether its entry is still the one it started for.

interface Ready<V> {
  readonly _tag: "Ready"
  readonly value: V
  /** `Effect.succeed(value)`, allocated once: a hit returns it as is. */
  readonly served: Effect.Effect<V>
  readonly loadedAt: number
  readonly expiresAt: number
  /** A hit from this time on starts a background reload. */
  readonly refreshAt: number
  /** After a failed reload: no new reload before this time. */
  readonly retryAt: number
}

/** The first load of a key: nothing to serve until it ends. */
interface Loading<V, E> {
  readonly _tag: "Loading"
  readonly flight: Deferred.Deferred<V, E>
}

/** A reload of a key whose value is still held (and served while fresh). */
interface Refreshing<V, E> {
  readonly _tag: "Refreshing"
  readonly current: Ready<V>
  readonly flight: Deferred.Deferred<V, E>
}

/** A failed load, remembered for its failure TTL. */
interface Failed<E> {
  readonly _tag: "Failed"
  readonly failure: Effect.Effect<never, E>
  readonly expiresAt: number
}

type State<V, E> = Ready<V> | Loading<V, E> | Refreshing<V, E> | Failed<E>
type InFlight<V, E> = Loading<V, E> | Refreshing<V, E>

interface Node<K, V, E> extends PolicyNode<Node<K, V, E>> {
  readonly key: K
  state: State<V, E>
}

const variance = { _Key: (_: unknown) => _, _Error: (_: never) => _, _Value: (_: unknown) => _ }

class LoadingCacheImpl<K, V, E> implements LoadingCache<K, V, E> {
  readonly [Cache.CacheTypeId] = variance as any
  readonly [Cache.ConsumerCacheTypeId] = variance as any

  private readonly map = new Map<K, Node<K, V, E>>()
  private readonly policy: WindowTinyLfu<Node<K, V, E>>
  private readonly running = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
  /** Loads decided by the current synchronous step, started by `launch` at its end. */
  private starting: Array<{
    readonly node: Node<K, V, E>
    readonly state: InFlight<V, E>
    readonly previous: Ready<V> | undefined
    readonly lookup: (() => Effect.Effect<V, E>) | undefined
  }> = []
  private readonly label: string
  private readonly metrics: M.CacheMetrics
  private readonly staleFor: number
  private readonly refreshAhead: number
  private closed = false
  private hits = 0
  private misses = 0
  private loads = 0
  private loadFailures = 0
  private evictions = 0
  private expirations = 0
  private invalidations = 0
  private refreshes = 0
  private staleServed = 0
  /** Chooses between LRU and W-TinyLFU for a cache with a bound on its number of entries. */
  private readonly duel: PolicyDuel | null

  constructor(
    private readonly options: LoadingCacheOptions<K, V, E, any>,
    private readonly runtime: Runtime.Runtime<any>,
    private readonly clock: Clock.Clock,
    private readonly permits: Effect.Semaphore | undefined
  ) {
    const weighted = options.weigher !== undefined
    this.policy = new WindowTinyLfu<Node<K, V, E>>({
      maximum: weighted ? (options.maxWeight ?? Infinity) : options.capacity,
      maximumEntries: options.capacity,
      weighted,
      onEvict: (node) => {
        if (this.map.get(node.key) === node) this.map.delete(node.key)
        this.evictions++
        this.metrics.evictions()
      }
    })
    this.duel = Number.isFinite(options.capacity) && Number.isFinite(this.policy.maximum) ? new PolicyDuel(this.policy) : null
    this.label = options.label ?? "cache"
    this.metrics = M.forCache(this.label)
    this.staleFor = options.staleIfError === undefined ? 0 : Duration.toMillis(Duration.decode(options.staleIfError))
    this.refreshAhead = options.refreshAhead ?? 1
  }

  // -------------------------------------------------------------------------------------------
  // The request path: synchronous, one decision per key.

  private now(): number {
    return this.clock.unsafeCurrentTimeMillis()
  }

  /** Serves one request: a fresh `Ready` state (a hit), or an effect to run (a load to wait for, a failure). */
  private serve(key: K, now: number, lookup?: () => Effect.Effect<V, E>): Ready<V> | Effect.Effect<V, E> {
    const hash = hashKey(key)
    this.policy.record(hash)
    const node = this.map.get(key)
    if (node === undefined) return this.miss(key, hash, lookup)
    const state = node.state
    switch (state._tag) {
      case "Ready":
        return this.serveReady(node, state, now, lookup)
      case "Refreshing": {
        const current = state.current
        if (now < current.expiresAt) return this.hit(node, current)
        this.countMiss()
        return this.withStaleFallback(node, state.flight, current)
      }
      case "Loading":
        this.countMiss()
        return Deferred.await(state.flight)
      case "Failed":
        if (now < state.expiresAt) {
          this.countMiss()
          return state.failure
        }
        this.map.delete(key)
        return this.miss(key, hash, lookup)
    }
  }

  private serveReady(node: Node<K, V, E>, ready: Ready<V>, now: number, lookup?: () => Effect.Effect<V, E>): Ready<V> | Effect.Effect<V, E> {
    if (now < ready.expiresAt) {
      if (now >= ready.refreshAt && now >= ready.retryAt) this.startLoad(node, ready, lookup)
      return this.hit(node, ready)
    }
    if (now < ready.expiresAt + this.staleFor) {
      if (now < ready.retryAt) {
        // A reload failed less than its failure TTL ago: serve stale without hammering the source.
        this.staleServed++
        this.metrics.staleServed()
        return this.hit(node, ready)
      }
      this.countMiss()
      return this.withStaleFallback(node, this.startLoad(node, ready, lookup).flight, ready)
    }
    this.expire(node)
    return this.miss(node.key, node.hash, lookup)
  }

  private hit(node: Node<K, V, E>, ready: Ready<V>): Ready<V> {
    this.hits++
    this.metrics.hits()
    this.policy.onHit(node)
    this.duel?.observe(node.hash, true, node.weight)
    return ready
  }

  private countMiss(): void {
    this.misses++
    this.metrics.misses()
  }

  /** No entry: a new one, loading. */
  private miss(key: K, hash: number, lookup?: () => Effect.Effect<V, E>): Effect.Effect<V, E> {
    this.countMiss()
    this.policy.onMiss(hash)
    this.duel?.observe(hash, false, this.policy.typicalWeight())
    return this.loadNew(key, hash, lookup)
  }

  private loadNew(key: K, hash: number, lookup?: () => Effect.Effect<V, E>): Effect.Effect<V, E> {
    const node: Node<K, V, E> = { key, hash, state: undefined as never, weight: 0, region: Region.None, prev: null, next: null }
    this.map.set(key, node)
    return Deferred.await(this.startLoad(node, undefined, lookup).flight)
  }

  /** Waits for a reload of an expired value; if it fails, the value is served while stale-if-error allows. */
  private withStaleFallback(node: Node<K, V, E>, flight: Deferred.Deferred<V, E>, stale: Ready<V>): Effect.Effect<V, E> {
    return Effect.catchAll(Deferred.await(flight), (error) =>
      Effect.suspend(() => {
        if (this.map.get(node.key) !== node || this.now() >= stale.expiresAt + this.staleFor) return Effect.fail(error)
        this.staleServed++
        this.metrics.staleServed()
        return Effect.as(
          Effect.logWarning(`cache ${this.label}: serving a stale value for ${String(node.key)}: ${describe(error)}`),
          stale.value
        )
      })
    )
  }

  // -------------------------------------------------------------------------------------------
  // Loads

  /**
   * Puts the node in flight (a first load, or a reload of `previous`). Its fiber starts at the end of
   * the synchronous step that decided it (`launch`), together with the other loads that step
   * decided, so that `getMany` can hand its first loads to `lookupMany` as one batch.
   */
  private startLoad(node: Node<K, V, E>, previous: Ready<V> | undefined, lookup?: () => Effect.Effect<V, E>): InFlight<V, E> {
    const flight = Deferred.unsafeMake<V, E>(FiberId.none)
    const state: InFlight<V, E> = previous === undefined ? { _tag: "Loading", flight } : { _tag: "Refreshing", current: previous, flight }
    node.state = state
    this.starting.push({ node, state, previous, lookup })
    return state
  }

  /** Starts the loads decided by the current step: first loads batched when `lookupMany` is given. */
  private launch(): void {
    if (this.starting.length === 0) return
    const started = this.starting
    this.starting = []
    if (this.closed) {
      for (const { state } of started) Deferred.unsafeDone(state.flight, Exit.interrupt(FiberId.none))
      return
    }
    const batch = this.options.lookupMany === undefined ? [] : started.filter((s) => s.previous === undefined && s.lookup === undefined)
    const batched = new Set(batch.length > 1 ? batch : [])
    if (batched.size > 0) this.fork(this.loadBatch(batch))
    for (const start of started) if (!batched.has(start)) this.fork(this.load(start.node, start.state, start.previous, start.lookup))
  }

  private fork(effect: Effect.Effect<void>): void {
    const fiber = Runtime.runFork(this.runtime)(effect)
    this.running.add(fiber)
    fiber.addObserver(() => this.running.delete(fiber))
  }

  private countLoads(n: number, refresh: boolean): void {
    this.loads += n
    this.metrics.loads(n)
    if (refresh) {
      this.refreshes += n
      this.metrics.refreshes(n)
    }
  }

  private withPermit<A, X>(effect: Effect.Effect<A, X>): Effect.Effect<A, X> {
    return this.permits === undefined ? effect : this.permits.withPermits(1)(effect)
  }

  private load(node: Node<K, V, E>, state: InFlight<V, E>, previous: Ready<V> | undefined, own?: () => Effect.Effect<V, E>): Effect.Effect<void> {
    const { lookup, reload } = this.options
    const started = this.now()
    const run = Effect.suspend(() => {
      this.countLoads(1, previous !== undefined)
      if (own !== undefined) return own()
      return previous !== undefined && reload !== undefined ? reload(node.key, previous.value) : lookup(node.key)
    }) as Effect.Effect<V, E>
    return this.withPermit(run).pipe(
      // Settles on every outcome, interruption included (the cache closing), so no waiter is left hanging.
      Effect.onExit((exit) =>
        Effect.sync(() => {
          this.metrics.loadDuration(this.now() - started)
          this.settle(node, state, exit)
        })
      ),
      Effect.ignore,
      Effect.withSpan("LoadingCache.load", {
        attributes: { cache: this.label, key: String(node.key), refresh: previous !== undefined },
        captureStackTrace: false
      })
    )
  }

  private loadBatch(batch: ReadonlyArray<{ readonly node: Node<K, V, E>; readonly state: InFlight<V, E> }>): Effect.Effect<void> {
    const keys = batch.map(({ node }) => node.key)
    const started = this.now()
    const run = Effect.suspend(() => {
      this.countLoads(keys.length, false)
      return this.options.lookupMany!(keys)
    }) as Effect.Effect<ReadonlyArray<V>, E>
    return this.withPermit(run).pipe(
      Effect.onExit((exit) =>
        Effect.sync(() => {
          this.metrics.loadDuration(this.now() - started)
          const answered = Exit.isSuccess(exit) && exit.value.length !== keys.length
            ? Exit.die(new Error(`cache ${this.label}: lookupMany answered ${exit.value.length} values for ${keys.length} keys`))
            : exit
          batch.forEach(({ node, state }, i) => this.settle(node, state, Exit.map(answered, (values) => values[i]!)))
        })
      ),
      Effect.ignore,
      Effect.withSpan("LoadingCache.loadMany", { attributes: { cache: this.label, keys: keys.length }, captureStackTrace: false })
    )
  }

  /** Records a finished load in its entry (unless the entry moved on meanwhile), then answers the waiters. */
  private settle(node: Node<K, V, E>, state: InFlight<V, E>, result: Exit.Exit<V, E>): void {
    let exit = result
    const now = this.now()
    const current = this.map.get(node.key) === node && node.state === state
    if (Exit.isSuccess(exit)) {
      const weight = this.weigh(node.key, exit.value)
      if (typeof weight !== "number") exit = Exit.die(weight)
      else if (current) this.store(node, exit.value, exit, now, weight)
    }
    if (Exit.isFailure(exit)) {
      const interrupted = Cause.isInterruptedOnly(exit.cause)
      if (!interrupted) {
        this.loadFailures++
        this.metrics.loadFailures()
      }
      if (current) {
        if (state._tag === "Refreshing") {
          node.state = interrupted ? state.current : { ...state.current, retryAt: now + this.ttlOf(exit) }
        } else {
          const ttl = interrupted ? 0 : this.ttlOf(exit)
          if (ttl > 0) node.state = { _tag: "Failed", failure: Effect.failCause(exit.cause), expiresAt: now + ttl }
          else this.drop(node)
        }
      }
    }
    this.publishSize()
    Deferred.unsafeDone(state.flight, exit)
  }

  private store(node: Node<K, V, E>, value: V, exit: Exit.Exit<V, E>, now: number, weight: number): void {
    const ttl = this.ttlOf(exit)
    if (ttl <= 0) return this.drop(node)
    node.state = {
      _tag: "Ready",
      value,
      served: Effect.succeed(value),
      loadedAt: now,
      expiresAt: now + ttl,
      refreshAt: this.refreshAhead >= 1 ? Infinity : now + ttl * this.refreshAhead,
      retryAt: 0
    }
    if (node.region === Region.None) this.policy.add(node, weight)
    else this.policy.reweigh(node, weight)
  }

  private ttlOf(exit: Exit.Exit<V, E>): number {
    return Duration.toMillis(Duration.decode(this.options.timeToLive(exit)))
  }

  /** The value's weight, or the defect a bad weigher is (the load then dies instead of corrupting the bound). */
  private weigh(key: K, value: V): number | Error {
    if (this.options.weigher === undefined) return 1
    const weight = this.options.weigher(key, value)
    return Number.isFinite(weight) && weight >= 0
      ? Math.max(1, Math.ceil(weight))
      : new Error(`cache ${this.label}: the weigher returned ${weight} for ${String(key)} (expected a finite number ≥ 0)`)
  }

  /** Removes the node from the map and the policy: not counted (the caller counts why). */
  private drop(node: Node<K, V, E>): void {
    if (this.map.get(node.key) === node) this.map.delete(node.key)
    this.policy.remove(node)
  }

  private expire(node: Node<K, V, E>): void {
    this.drop(node)
    this.expirations++
    this.metrics.expirations()
  }

  private publishSize(): void {
    this.metrics.size(this.policy.count)
    this.metrics.weight(this.policy.weightedSize)
  }

  // -------------------------------------------------------------------------------------------
  // Cache.Cache

  get(key: K): Effect.Effect<V, E> {
    return Effect.suspend(() => {
      const served = this.serve(key, this.now())
      this.launch()
      return Effect.isEffect(served) ? served : served.served
    })
  }

  getWith<E2 extends E>(key: K, lookup: () => Effect.Effect<V, E2>): Effect.Effect<V, E> {
    return Effect.suspend(() => {
      const served = this.serve(key, this.now(), lookup)
      this.launch()
      return Effect.isEffect(served) ? served : served.served
    })
  }

  getEither(key: K): Effect.Effect<Either.Either<V, V>, E> {
    return Effect.suspend((): Effect.Effect<Either.Either<V, V>, E> => {
      const served = this.serve(key, this.now())
      this.launch()
      return Effect.isEffect(served) ? Effect.map(served, (v) => Either.right(v)) : Effect.succeed(Either.left(served.value))
    })
  }

  getMany(keys: Iterable<K>): Effect.Effect<Array<Either.Either<V, E>>> {
    return Effect.suspend(() => {
      const now = this.now()
      const results: Array<Either.Either<V, E>> = []
      let waits: Array<[number, Effect.Effect<V, E>]> | undefined
      for (const key of keys) {
        const served = this.serve(key, now)
        if (Effect.isEffect(served)) {
          ;(waits ??= []).push([results.length, served])
          results.push(undefined as never)
        } else {
          results.push(Either.right(served.value))
        }
      }
      this.launch()
      if (waits === undefined) return Effect.succeed(results)
      return Effect.as(
        Effect.forEach(waits, ([i, wait]) => Effect.map(Effect.either(wait), (result) => void (results[i] = result)), { discard: true }),
        results
      )
    })
  }

  getOption(key: K): Effect.Effect<Option.Option<V>, E> {
    return Effect.suspend(() => {
      const node = this.map.get(key)
      const now = this.now()
      if (node !== undefined) {
        const state = node.state
        if (state._tag === "Loading") return Effect.map(Deferred.await(state.flight), Option.some)
        if (state._tag === "Failed" && now < state.expiresAt) return state.failure
        const fresh = freshValue(state, now)
        if (fresh !== undefined) return Effect.succeed(Option.some(this.hit(node, fresh).value))
      }
      this.countMiss()
      return Effect.succeed(Option.none())
    })
  }

  getOptionComplete(key: K): Effect.Effect<Option.Option<V>> {
    return Effect.sync(() => {
      const node = this.map.get(key)
      const fresh = node === undefined ? undefined : freshValue(node.state, this.now())
      if (fresh === undefined) {
        this.countMiss()
        return Option.none()
      }
      return Option.some(this.hit(node!, fresh).value)
    })
  }

  contains(key: K): Effect.Effect<boolean> {
    return Effect.sync(() => {
      const state = this.map.get(key)?.state
      if (state === undefined) return false
      if (state._tag === "Loading") return true
      if (state._tag === "Failed") return this.now() < state.expiresAt
      return freshValue(state, this.now()) !== undefined
    })
  }

  entryStats(key: K): Effect.Effect<Option.Option<Cache.EntryStats>> {
    return Effect.sync(() => {
      const state = this.map.get(key)?.state
      const ready = state?._tag === "Ready" ? state : state?._tag === "Refreshing" ? state.current : undefined
      return ready === undefined ? Option.none() : Option.some(Cache.makeEntryStats(ready.loadedAt))
    })
  }

  refresh(key: K): Effect.Effect<void, E> {
    return Effect.suspend(() => {
      const wait = this.refreshNow(key)
      this.launch()
      return Effect.asVoid(wait)
    })
  }

  private refreshNow(key: K): Effect.Effect<V, E> {
    const node = this.map.get(key)
    if (node === undefined) return this.loadNew(key, hashKey(key))
    const state = node.state
    switch (state._tag) {
      case "Loading":
      case "Refreshing":
        return Deferred.await(state.flight)
      case "Ready":
        return Deferred.await(this.startLoad(node, state).flight)
      case "Failed":
        this.map.delete(key)
        return this.loadNew(key, node.hash)
    }
  }

  set(key: K, value: V): Effect.Effect<void> {
    return Effect.sync(() => {
      const exit = Exit.succeed(value)
      const weight = this.weigh(key, value)
      if (typeof weight !== "number") throw weight
      let node = this.map.get(key)
      if (node === undefined) {
        node = { key, hash: hashKey(key), state: undefined as never, weight: 0, region: Region.None, prev: null, next: null }
        this.map.set(key, node)
      } else if (node.region !== Region.None) {
        this.policy.onHit(node)
      }
      this.store(node, value, exit, this.now(), weight)
      this.publishSize()
    })
  }

  invalidate(key: K): Effect.Effect<void> {
    return Effect.sync(() => this.invalidateNow(key))
  }

  invalidateWhen(key: K, predicate: (value: V) => boolean): Effect.Effect<void> {
    return Effect.sync(() => {
      const state = this.map.get(key)?.state
      const ready = state?._tag === "Ready" ? state : state?._tag === "Refreshing" ? state.current : undefined
      if (ready !== undefined && predicate(ready.value)) this.invalidateNow(key)
    })
  }

  get invalidateAll(): Effect.Effect<void> {
    return Effect.sync(() => {
      const held = this.policy.count
      this.map.clear()
      this.policy.clear()
      if (held > 0) {
        this.invalidations += held
        this.metrics.invalidations(held)
      }
      this.publishSize()
    })
  }

  private invalidateNow(key: K): void {
    const node = this.map.get(key)
    if (node === undefined) return
    const held = node.region !== Region.None
    this.drop(node)
    if (held) {
      this.invalidations++
      this.metrics.invalidations()
    }
    this.publishSize()
  }

  /** Entries holding a value (loads in flight and remembered failures are not counted). */
  get size(): Effect.Effect<number> {
    return Effect.sync(() => this.policy.count)
  }

  /** Keys with a fresh value, in the policy's order (window, probation, protected; least recent first). */
  get keys(): Effect.Effect<Array<K>> {
    return Effect.sync(() => this.fresh().map(([key]) => key))
  }

  get values(): Effect.Effect<Array<V>> {
    return Effect.sync(() => this.fresh().map(([, value]) => value))
  }

  get entries(): Effect.Effect<Array<[K, V]>> {
    return Effect.sync(() => this.fresh())
  }

  get cacheStats(): Effect.Effect<Cache.CacheStats> {
    return Effect.sync(() => Cache.makeCacheStats({ hits: this.hits, misses: this.misses, size: this.policy.count }))
  }

  get stats(): Effect.Effect<LoadingCacheStats> {
    return Effect.sync(() => {
      const requests = this.hits + this.misses
      return {
        hits: this.hits,
        misses: this.misses,
        size: this.policy.count,
        loads: this.loads,
        loadFailures: this.loadFailures,
        evictions: this.evictions,
        expirations: this.expirations,
        invalidations: this.invalidations,
        refreshes: this.refreshes,
        staleServed: this.staleServed,
        weight: this.policy.weightedSize,
        hitRate: requests === 0 ? 0 : this.hits / requests,
        evictionPolicy: this.duel?.current ?? "w-tinylfu"
      }
    })
  }

  private fresh(): Array<[K, V]> {
    const now = this.now()
    const out: Array<[K, V]> = []
    for (const node of this.policy.nodes()) {
      const value = freshValue(node.state, now)
      if (value !== undefined) out.push([node.key, value.value])
    }
    return out
  }

  // -------------------------------------------------------------------------------------------
  // Lifecycle

  /** Drops what can no longer be served: values past TTL + stale-if-error, failures past their TTL. */
  sweep(): void {
    const now = this.now()
    for (const node of [...this.map.values()]) {
      const state = node.state
      if (state._tag === "Ready" && now >= state.expiresAt + this.staleFor) this.expire(node)
      else if (state._tag === "Failed" && now >= state.expiresAt) this.drop(node)
    }
    this.publishSize()
  }

  close(): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.closed = true
      return Fiber.interruptAll([...this.running])
    })
  }
}

/** The value a state can serve now, if any. */
const freshValue = <V, E>(state: State<V, E>, now: number): Ready<V> | undefined => {
  const ready = state._tag === "Ready" ? state : state._tag === "Refreshing" ? state.current : undefined
  return ready !== undefined && now < ready.expiresAt ? ready : undefined
}

const describe = (error: unknown): string =>
  error instanceof Error ? error.message : typeof error === "object" && error !== null && "message" in error ? String(error.message) : String(error)

const invalid = (field: string, value: unknown, reason: string) =>
  Effect.dieMessage(`LoadingCache: ${field} ${reason} (got ${String(value)})`)

/**
 * A loading cache with `Cache.makeWith`'s options and the engine's own (see the module notes).
 * Its loads and its sweep run in fibers of the scope it is built in; closing the scope stops them.
 * Options that make no sense (a negative capacity, `maxWeight` without `weigher`, ...) are a defect.
 */
export const makeWith = <Key, Value, Error = never, R = never>(
  options: LoadingCacheOptions<Key, Value, Error, R>
): Effect.Effect<LoadingCache<Key, Value, Error>, never, R | Scope.Scope> =>
  Effect.gen(function* () {
    if (!(options.capacity >= 0) || (Number.isFinite(options.capacity) && !Number.isInteger(options.capacity))) {
      return yield* invalid("capacity", options.capacity, "must be a whole number ≥ 0 or Infinity")
    }
    if ((options.maxWeight === undefined) !== (options.weigher === undefined)) {
      return yield* invalid("maxWeight", options.maxWeight, "and weigher go together")
    }
    if (options.maxWeight !== undefined && !(options.maxWeight > 0)) return yield* invalid("maxWeight", options.maxWeight, "must be > 0")
    if (options.refreshAhead !== undefined && !(options.refreshAhead > 0 && options.refreshAhead <= 1)) {
      return yield* invalid("refreshAhead", options.refreshAhead, "must be a fraction in (0, 1]")
    }
    if (options.lookupConcurrency !== undefined && !(Number.isInteger(options.lookupConcurrency) && options.lookupConcurrency >= 1)) {
      return yield* invalid("lookupConcurrency", options.lookupConcurrency, "must be a whole number ≥ 1")
    }
    const runtime = yield* Effect.runtime<R>()
    const clock = yield* Effect.clock
    const permits = options.lookupConcurrency === undefined ? undefined : yield* Effect.makeSemaphore(options.lookupConcurrency)
    const cache = new LoadingCacheImpl<Key, Value, Error>(options, runtime, clock, permits)
    yield* Effect.addFinalizer(() => cache.close())
    if (options.sweepInterval !== undefined) {
      yield* Effect.forkScoped(Effect.repeat(Effect.sync(() => cache.sweep()), Schedule.spaced(options.sweepInterval)))
    }
    return cache
  })

/** As `Cache.make`: one TTL for values and failures alike. */
export const make = <Key, Value, Error = never, R = never>(options: {
  readonly capacity: number
  readonly timeToLive: Duration.DurationInput
  readonly lookup: Cache.Lookup<Key, Value, Error, R>
}): Effect.Effect<LoadingCache<Key, Value, Error>, never, R | Scope.Scope> =>
  makeWith({ capacity: options.capacity, lookup: options.lookup, timeToLive: () => options.timeToLive })
