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
 * - **Removal notices**: every value that leaves (evicted, expired, invalidated, replaced) is told
 *   to `onRemoval` once, in a fiber of the cache after the request that removed it (`Removal.ts`).
 * - Keys are compared as `Map` keys (strings and numbers by value, objects by reference), not with
 *   `Equal`: use string or number keys.
 * - The cache reads the `Clock` of the fiber that builds it (build it after `TestClock` is in place).
 *
 * Layout: `EntryState.ts` (an entry's states and transitions, pure), `LoadRunner.ts` (the loads'
 * fibers), `Entries.ts` (the map and the eviction policy, changed together), `Eviction.ts` (the
 * policy and the duel), `Removal.ts` (the listener's queue); this file is the `Cache` API over them.
 *
 * Why not Effect 3's `Cache` (measured on effect 3.22.4, docs/decisions/cache-engine.md): its
 * eviction evicts hot keys (every load leaves a stale node in its access list; on a Zipf(1.0) trace
 * over 1,000 keys at capacity 100 it hits 38 % where LRU hits 58 % and this engine 66 %); that list
 * grows on every reload (a capacity-1 cache: 5,002 nodes after 2,000 reloads); a failed refresh
 * replaces the good value; an interrupted first caller fails every waiter; `invalidate` cannot stop
 * an in-flight lookup from being cached; and it has no weights, no eviction or load counters.
 */
import { Cache, Deferred, Duration, Effect, Either, Exit, Option, type Runtime, Schedule, type Scope } from "effect"
import { errorReason } from "../domain/errors.js"
import * as M from "../metrics.js"
import { Entries, type Entry } from "./Entries.js"
import * as EntryState from "./EntryState.js"
import { hashKey } from "./FrequencySketch.js"
import { type Load, type LookupMany, LoadRunner } from "./LoadRunner.js"
import { Permits } from "./Permits.js"
import type { EvictionPolicy } from "./PolicyDuel.js"
import { type RemovalCause, type RemovalListener, RemovalQueue } from "./Removal.js"
import { type Ticker, tickerOf } from "./Ticker.js"

export type { RemovalCause, RemovalListener } from "./Removal.js"

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
  /** Reloads a key that holds a value (refresh-ahead, `refresh`, a reload after TTL), before any caller's own lookup; default: the caller's lookup, else `lookup`. */
  readonly reload?: (key: Key, previous: Value) => Effect.Effect<Value, Error, R>
  /**
   * Told of each value that leaves the cache and why (`RemovalCause`), to release what it holds.
   * Runs in a fiber of the cache after the request that removed the value, one notice at a time;
   * its failures are logged, never propagated. Default: none.
   */
  readonly onRemoval?: RemovalListener<Key, Value, R>
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
   * With `lookup`, a key that has to be loaded is loaded with it (the key and its place in `keys`),
   * as `getWith` does for one key: for values whose computation the caller holds (a catalog descriptor).
   */
  getMany(keys: Iterable<Key>, lookup?: (key: Key, index: number) => Effect.Effect<Value, Error>): Effect.Effect<Array<Either.Either<Value, Error>>>
  /**
   * `getMany` with a batch lookup of this call's own (as Caffeine's `getAll(keys, mappingFunction)`):
   * the keys it has to load are loaded together, in one call of `lookupMany` (one value per key, in
   * their order), for values whose computation the caller holds (a text's count under a header).
   */
  getManyWith(keys: Iterable<Key>, lookupMany: (keys: ReadonlyArray<Key>) => Effect.Effect<ReadonlyArray<Value>, Error>): Effect.Effect<Array<Either.Either<Value, Error>>>
  /** Counters since the cache was built. */
  readonly stats: Effect.Effect<LoadingCacheStats>
}

const variance = { _Key: (_: unknown) => _, _Error: (_: never) => _, _Value: (_: unknown) => _ }

type Begin<K, V, E> = (load: Load<K, V, E>) => void

class LoadingCacheImpl<K, V, E> implements LoadingCache<K, V, E> {
  readonly [Cache.CacheTypeId] = variance as any
  readonly [Cache.ConsumerCacheTypeId] = variance as any

  private readonly table: Entries<K, V, E>
  private readonly runner: LoadRunner<K, V, E>
  private readonly removals: RemovalQueue<K, V> | undefined
  private readonly label: string
  private readonly metrics: M.CacheMetrics
  private readonly timing: EntryState.Timing
  private hits = 0
  private misses = 0
  private loadFailures = 0
  private evictions = 0
  private expirations = 0
  private invalidations = 0
  private staleServed = 0

  constructor(
    private readonly options: LoadingCacheOptions<K, V, E, any>,
    runtime: Runtime.Runtime<any>,
    private readonly ticker: Ticker,
    permits: Permits | undefined
  ) {
    const weighted = options.weigher !== undefined
    this.label = options.label ?? "cache"
    this.metrics = M.forCache(this.label)
    this.timing = {
      staleFor: options.staleIfError === undefined ? 0 : Duration.toMillis(Duration.decode(options.staleIfError)),
      refreshAhead: options.refreshAhead ?? 1
    }
    this.table = new Entries<K, V, E>({
      maximum: weighted ? (options.maxWeight ?? Infinity) : options.capacity,
      maximumEntries: options.capacity,
      weighted,
      onRemoved: (key, value, cause) => this.removed(key, value, cause)
    })
    this.runner = new LoadRunner<K, V, E>({
      lookup: options.lookup,
      lookupMany: options.lookupMany,
      reload: options.reload,
      permits,
      runtime,
      label: this.label,
      metrics: this.metrics,
      now: () => this.ticker.now(),
      settle: (load, exit) => this.settle(load, exit)
    })
    this.removals = options.onRemoval === undefined ? undefined : new RemovalQueue(options.onRemoval, this.runner.fork, this.label)
  }

  // -------------------------------------------------------------------------------------------
  // The request path: synchronous, one decision per key.

  /** Serves one request: a fresh `Ready` state (a hit), or an effect to run (a load to wait for, a failure). */
  private serve(key: K, now: number, begin: Begin<K, V, E>, lookup?: () => Effect.Effect<V, E>): EntryState.Ready<V> | Effect.Effect<V, E> {
    const entry = this.table.find(key)
    if (entry === undefined) return this.loadAnew(key, hashKey(key), begin, lookup)
    const state = entry.state
    switch (EntryState.request(state, now, this.timing)) {
      case EntryState.Verdict.Hit:
        return this.hit(entry, EntryState.held(state)!)
      case EntryState.Verdict.HitAndRefresh: {
        const ready = this.hit(entry, state as EntryState.Ready<V>)
        this.reload(entry, ready, begin, lookup)
        return ready
      }
      case EntryState.Verdict.Stale:
        // A reload failed less than its failure TTL ago: serve stale without hammering the source.
        this.countStale()
        return this.hit(entry, state as EntryState.Ready<V>)
      case EntryState.Verdict.Reload: {
        this.miss(entry.hash, entry)
        const ready = state as EntryState.Ready<V>
        return this.withStaleFallback(entry, this.reload(entry, ready, begin, lookup).flight, ready)
      }
      case EntryState.Verdict.Wait:
        this.miss(entry.hash, entry)
        return state._tag === "Refreshing" ? this.withStaleFallback(entry, state.flight, state.current) : Deferred.await((state as EntryState.InFlight<V, E>).flight)
      case EntryState.Verdict.Fail:
        this.miss(entry.hash, entry)
        return (state as EntryState.Failed<E>).failure
      case EntryState.Verdict.Expired:
        this.table.remove(entry, "expired")
        return this.loadAnew(key, entry.hash, begin, lookup)
      case EntryState.Verdict.Forgotten:
        this.table.remove(entry, null)
        return this.loadAnew(key, entry.hash, begin, lookup)
    }
  }

  private hit(entry: Entry<K, V, E>, ready: EntryState.Ready<V>): EntryState.Ready<V> {
    this.hits++
    this.metrics.hits()
    this.table.request(entry.hash, entry)
    return ready
  }

  /**
   * A request not served at once. Shown to the policy with its `entry` when the key has one (a load
   * in flight, a failure, a value past its TTL): whichever policy served, the key would be there, so
   * for the duel it is no evidence either way; a key with no entry is a miss of the policy's own.
   */
  private miss(hash: number, entry?: Entry<K, V, E>): void {
    this.countMissOnly()
    this.table.request(hash, entry)
  }

  private countStale(): void {
    this.staleServed++
    this.metrics.staleServed()
  }

  /** No entry (or none worth keeping): a miss, and a new entry, loading. */
  private loadAnew(key: K, hash: number, begin: Begin<K, V, E>, lookup?: () => Effect.Effect<V, E>): Effect.Effect<V, E> {
    this.miss(hash)
    const state = EntryState.loading<V, E>(undefined)
    const entry = this.table.create(key, hash, state)
    begin({ entry, state, previous: undefined, reloading: false, lookup })
    return Deferred.await(state.flight)
  }

  /** Starts a reload of the value the entry holds (served meanwhile while fresh). */
  private reload(entry: Entry<K, V, E>, previous: EntryState.Ready<V>, begin: Begin<K, V, E>, lookup?: () => Effect.Effect<V, E>): EntryState.InFlight<V, E> {
    const state = EntryState.loading<V, E>(previous)
    entry.state = state
    begin({ entry, state, previous: previous.value, reloading: true, lookup })
    return state
  }

  /** Waits for a reload of an expired value; if it fails, the value is served while stale-if-error allows. */
  private withStaleFallback(entry: Entry<K, V, E>, flight: EntryState.InFlight<V, E>["flight"], stale: EntryState.Ready<V>): Effect.Effect<V, E> {
    return Effect.catchAll(Deferred.await(flight), (error) =>
      Effect.suspend(() => {
        if (!this.table.isCurrent(entry) || this.ticker.now() >= stale.expiresAt + this.timing.staleFor) return Effect.fail(error)
        this.countStale()
        return Effect.as(
          Effect.logWarning(`cache ${this.label}: serving a stale value for ${String(entry.key)}: ${errorReason(error)}`),
          stale.value
        )
      })
    )
  }

  // -------------------------------------------------------------------------------------------
  // A load's end

  /** Records a finished load in its entry (unless the entry moved on meanwhile), then answers the waiters. */
  private settle(load: Load<K, V, E>, result: Exit.Exit<V, E>): void {
    const { entry, state } = load
    let exit = result
    let weight = 0
    if (Exit.isSuccess(exit)) {
      const weighed = this.weigh(entry.key, exit.value)
      if (typeof weighed === "number") weight = weighed
      else exit = Exit.die(weighed)
    }
    if (Exit.isFailure(exit) && !Exit.isInterrupted(exit)) {
      this.loadFailures++
      this.metrics.loadFailures()
    }
    const fresh = Exit.isSuccess(exit) && !Object.is(exit.value, load.previous) ? exit : undefined
    if (this.table.isCurrent(entry, state)) {
      const next = EntryState.settled(state, exit, this.ticker.now(), this.ttlOf(exit), this.timing)
      if (next === undefined) {
        this.table.remove(entry, Exit.isSuccess(exit) ? "expired" : null)
        if (fresh !== undefined) this.notify(entry.key, fresh.value, "expired")
      } else if (next._tag === "Ready") {
        this.table.hold(entry, next, weight)
      } else {
        entry.state = next
      }
    } else if (fresh !== undefined) {
      // The entry left (or was set) while loading: the value is not kept, and the listener is told so.
      this.notify(entry.key, fresh.value, entry.removedBy ?? "replaced")
    }
    this.publishSize()
    Deferred.unsafeDone(state.flight, exit)
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

  /** A value the cache never held is dropped (loaded after its entry left, or with nothing to keep it for): only the listener is told. */
  private notify(key: K, value: V, cause: RemovalCause): void {
    this.removals?.push(key, value, cause)
  }

  /** A held value left: counted by cause and told to the listener. */
  private removed(key: K, value: V, cause: RemovalCause): void {
    switch (cause) {
      case "evicted":
        this.evictions++
        this.metrics.evictions()
        break
      case "expired":
        this.expirations++
        this.metrics.expirations()
        break
      case "invalidated":
        this.invalidations++
        this.metrics.invalidations()
        break
    }
    this.removals?.push(key, value, cause)
  }

  private publishSize(): void {
    this.metrics.size(this.table.count)
    this.metrics.weight(this.table.weight)
  }

  // -------------------------------------------------------------------------------------------
  // Cache.Cache

  get(key: K): Effect.Effect<V, E> {
    return Effect.suspend(() => this.serveOne(key, undefined))
  }

  getWith<E2 extends E>(key: K, lookup: () => Effect.Effect<V, E2>): Effect.Effect<V, E> {
    return Effect.suspend(() => this.serveOne(key, lookup))
  }

  private serveOne(key: K, lookup: (() => Effect.Effect<V, E>) | undefined): Effect.Effect<V, E> {
    const served = this.serve(key, this.ticker.now(), this.runner.start, lookup)
    return isReady(served) ? served.served : served
  }

  getEither(key: K): Effect.Effect<Either.Either<V, V>, E> {
    return Effect.suspend((): Effect.Effect<Either.Either<V, V>, E> => {
      const served = this.serve(key, this.ticker.now(), this.runner.start)
      return isReady(served) ? Effect.succeed(Either.left(served.value)) : Effect.map(served, (v) => Either.right(v))
    })
  }

  getMany(keys: Iterable<K>, lookup?: (key: K, index: number) => Effect.Effect<V, E>): Effect.Effect<Array<Either.Either<V, E>>> {
    return this.serveMany(keys, lookup === undefined ? undefined : (key, i) => () => lookup(key, i), undefined)
  }

  getManyWith(keys: Iterable<K>, lookupMany: (keys: ReadonlyArray<K>) => Effect.Effect<ReadonlyArray<V>, E>): Effect.Effect<Array<Either.Either<V, E>>> {
    // A key loaded alone (a reload, or the only miss) is a batch of one (`LoadRunner`).
    return this.serveMany(keys, undefined, lookupMany)
  }

  /** Serves `keys` in one step: `lookupOf` a key's own lookup, if any; `many` the batch lookup its first loads share. */
  private serveMany(
    keys: Iterable<K>,
    lookupOf: ((key: K, index: number) => () => Effect.Effect<V, E>) | undefined,
    many: LookupMany<K, V, E> | undefined
  ): Effect.Effect<Array<Either.Either<V, E>>> {
    return Effect.suspend(() => {
      const now = this.ticker.now()
      const results: Array<Either.Either<V, E>> = []
      const waits: Array<[number, Effect.Effect<V, E>]> = []
      this.runner.batch((start) => {
        const begin: Begin<K, V, E> = many === undefined ? start : (load) => start({ ...load, many })
        for (const key of keys) {
          const i = results.length
          const served = this.serve(key, now, begin, lookupOf === undefined ? undefined : lookupOf(key, i))
          if (!isReady(served)) waits.push([results.length, served])
          results.push(isReady(served) ? Either.right(served.value) : (undefined as never))
        }
      })
      if (waits.length === 0) return Effect.succeed(results)
      return Effect.as(
        Effect.forEach(waits, ([i, wait]) => Effect.map(Effect.either(wait), (result) => void (results[i] = result)), { discard: true }),
        results
      )
    })
  }

  getOption(key: K): Effect.Effect<Option.Option<V>, E> {
    return Effect.suspend(() => {
      const entry = this.table.find(key)
      const now = this.ticker.now()
      if (entry !== undefined) {
        const state = entry.state
        if (state._tag === "Loading") return Effect.map(Deferred.await(state.flight), Option.some)
        if (state._tag === "Failed" && now < state.expiresAt) return state.failure
        const fresh = EntryState.servable(state, now)
        if (fresh !== undefined) return Effect.succeed(Option.some(this.hit(entry, fresh).value))
      }
      this.countMissOnly()
      return Effect.succeed(Option.none())
    })
  }

  getOptionComplete(key: K): Effect.Effect<Option.Option<V>> {
    return Effect.sync(() => {
      const entry = this.table.find(key)
      const fresh = entry === undefined ? undefined : EntryState.servable(entry.state, this.ticker.now())
      if (fresh === undefined) {
        this.countMissOnly()
        return Option.none()
      }
      return Option.some(this.hit(entry!, fresh).value)
    })
  }

  /** A miss that asks for no load (`getOption*`): counted, not shown to the policy. */
  private countMissOnly(): void {
    this.misses++
    this.metrics.misses()
  }

  contains(key: K): Effect.Effect<boolean> {
    return Effect.sync(() => {
      const state = this.table.find(key)?.state
      if (state === undefined) return false
      if (state._tag === "Loading") return true
      if (state._tag === "Failed") return this.ticker.now() < state.expiresAt
      return EntryState.servable(state, this.ticker.now()) !== undefined
    })
  }

  entryStats(key: K): Effect.Effect<Option.Option<Cache.EntryStats>> {
    return Effect.sync(() => {
      const entry = this.table.find(key)
      const ready = entry === undefined ? undefined : EntryState.held(entry.state)
      return ready === undefined ? Option.none() : Option.some(Cache.makeEntryStats(ready.loadedAt))
    })
  }

  refresh(key: K): Effect.Effect<void, E> {
    return Effect.suspend(() => Effect.asVoid(this.refreshNow(key)))
  }

  private refreshNow(key: K): Effect.Effect<V, E> {
    const entry = this.table.find(key)
    const begin = this.runner.start
    if (entry === undefined) return this.startFirst(key, hashKey(key), begin)
    const state = entry.state
    switch (state._tag) {
      case "Loading":
      case "Refreshing":
        return Deferred.await(state.flight)
      case "Ready":
        return Deferred.await(this.reload(entry, state, begin).flight)
      case "Failed":
        this.table.remove(entry, null)
        return this.startFirst(key, entry.hash, begin)
    }
  }

  /** A first load asked for by `refresh`: not a request, so neither a hit nor a miss. */
  private startFirst(key: K, hash: number, begin: Begin<K, V, E>): Effect.Effect<V, E> {
    const state = EntryState.loading<V, E>(undefined)
    const entry = this.table.create(key, hash, state)
    begin({ entry, state, previous: undefined, reloading: false, lookup: undefined })
    return Deferred.await(state.flight)
  }

  set(key: K, value: V): Effect.Effect<void> {
    return Effect.sync(() => {
      const weight = this.weigh(key, value)
      if (typeof weight !== "number") throw weight
      const entry = this.table.find(key)
      const ttl = this.ttlOf(Exit.succeed(value))
      if (ttl <= 0) {
        if (entry !== undefined) this.table.remove(entry, "replaced")
      } else {
        const ready = EntryState.ready(value, this.ticker.now(), ttl, this.timing)
        this.table.hold(entry ?? this.table.create(key, hashKey(key), ready), ready, weight)
      }
      this.publishSize()
    })
  }

  invalidate(key: K): Effect.Effect<void> {
    return Effect.sync(() => this.invalidateNow(key))
  }

  invalidateWhen(key: K, predicate: (value: V) => boolean): Effect.Effect<void> {
    return Effect.sync(() => {
      const entry = this.table.find(key)
      const ready = entry === undefined ? undefined : EntryState.held(entry.state)
      if (ready !== undefined && predicate(ready.value)) this.invalidateNow(key)
    })
  }

  get invalidateAll(): Effect.Effect<void> {
    return Effect.sync(() => {
      this.table.clear("invalidated")
      this.publishSize()
    })
  }

  private invalidateNow(key: K): void {
    const entry = this.table.find(key)
    if (entry === undefined) return
    this.table.remove(entry, "invalidated")
    this.publishSize()
  }

  /** Entries holding a value (loads in flight and remembered failures are not counted). */
  get size(): Effect.Effect<number> {
    return Effect.sync(() => this.table.count)
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
    return Effect.sync(() => Cache.makeCacheStats({ hits: this.hits, misses: this.misses, size: this.table.count }))
  }

  get stats(): Effect.Effect<LoadingCacheStats> {
    return Effect.sync(() => {
      const requests = this.hits + this.misses
      return {
        hits: this.hits,
        misses: this.misses,
        size: this.table.count,
        loads: this.runner.loads,
        loadFailures: this.loadFailures,
        evictions: this.evictions,
        expirations: this.expirations,
        invalidations: this.invalidations,
        refreshes: this.runner.refreshes,
        staleServed: this.staleServed,
        weight: this.table.weight,
        hitRate: requests === 0 ? 0 : this.hits / requests,
        evictionPolicy: this.table.eviction.current
      }
    })
  }

  private fresh(): Array<[K, V]> {
    const now = this.ticker.now()
    const out: Array<[K, V]> = []
    for (const entry of this.table.held()) {
      const ready = EntryState.servable(entry.state, now)
      if (ready !== undefined) out.push([entry.key, ready.value])
    }
    return out
  }

  // -------------------------------------------------------------------------------------------
  // Lifecycle

  /** Drops what can no longer be served: values past TTL + stale-if-error, failures past their TTL. */
  sweep(): void {
    const now = this.ticker.now()
    for (const entry of this.table.all()) {
      const finished = EntryState.finished(entry.state, now, this.timing)
      if (finished !== undefined) this.table.remove(entry, finished === "expired" ? "expired" : null)
    }
    this.publishSize()
  }

  close(): Effect.Effect<void> {
    return this.runner.close()
  }
}

/** Whether `serve` answered a value at once (a `Ready` state; no effect is tagged "Ready"): cheaper than `Effect.isEffect` on a hit. */
const isReady = <V>(served: EntryState.Ready<V> | Effect.Effect<V, any>): served is EntryState.Ready<V> => (served as { _tag?: unknown })._tag === "Ready"

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
    const permits = options.lookupConcurrency === undefined ? undefined : new Permits(options.lookupConcurrency)
    const cache = new LoadingCacheImpl<Key, Value, Error>(options, runtime, tickerOf(clock), permits)
    yield* Effect.addFinalizer(() => cache.close())
    if (options.sweepInterval !== undefined) {
      yield* Effect.forkScoped(Effect.repeat(Effect.sync(() => cache.sweep()), Schedule.spaced(options.sweepInterval)))
    }
    return cache
  })
