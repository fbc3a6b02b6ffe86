/**
 * ManagerCache: the store managers of the sources, loaded once and shared.
 *
 * Contract
 * - A **hit** is a request served without waiting for any load. A **miss** waits for one.
 * - One load per source at a time, however many callers wait (single-flight). The load runs in a
 *   fiber owned by the cache: a caller that is interrupted (timeout, aborted request) stops waiting,
 *   and neither the load nor the other waiters notice.
 * - A manager is served for `ttl`. An access after `refreshAhead × ttl` reloads it in the background
 *   while callers keep the current one. After `ttl` an access waits for a reload; if that reload fails,
 *   the last good manager is served for up to `staleIfError` more (and the failure is counted), retried
 *   at most once per `failureTtl`.
 * - A failed load with no manager to fall back on is remembered for `failureTtl`.
 * - At most `capacity` managers are held; W-TinyLFU chooses what to keep (a small LRU window, then a
 *   main LRU that admits a newcomer only if it is asked for more often than the main victim).
 * - A background sweep every `sweepInterval` drops entries that can no longer be served.
 * - `invalidate`/`invalidateAll` drop entries now; a load already running when they are called still
 *   answers its waiters but is not cached. Catalog changes (`StoreManagerRegistry.changes`) invalidate
 *   the sources they name.
 *
 * Why not Effect's `Cache` for the managers: on Effect 3 its eviction loses to FIFO on skewed
 * traffic, its access list grows with every invalidate/reload cycle, a failed refresh replaces the
 * good value and an interrupted first caller fails every waiter (README, "Why not Effect's Cache").
 * The registry's catalog, a single key, does use `Cache.makeWith`.
 */
import { Cause, Clock, Context, Deferred, Duration, Effect, Either, Exit, FiberId, Layer, Schedule } from "effect"
import { CacheSettings, type CacheConfig } from "../domain/config.js"
import type { LoadError } from "../domain/errors.js"
import * as M from "../metrics.js"
import { FrequencySketch } from "./FrequencySketch.js"
import type { StoreManager } from "./StoreManager.js"
import { StoreManagerRegistry } from "./StoreManagerRegistry.js"

/** Counters of one cache since it was built. */
export interface CacheStats {
  readonly hits: number
  readonly misses: number
  readonly loads: number
  readonly loadFailures: number
  readonly evictions: number
  readonly expirations: number
  readonly invalidations: number
  readonly refreshes: number
  readonly staleServed: number
  readonly size: number
  /** hits / (hits + misses), 0 before any request. */
  readonly hitRate: number
}

export interface ManagerCacheShape {
  readonly get: (id: string) => Effect.Effect<StoreManager, LoadError>
  /** Every id's manager or its load error, in the order asked; loads run in parallel. */
  readonly getMany: (ids: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Either.Either<StoreManager, LoadError>>>
  readonly invalidate: (id: string) => Effect.Effect<void>
  readonly invalidateAll: Effect.Effect<void>
  /** Reloads now; callers keep the current manager meanwhile. Fails if the reload fails. */
  readonly refresh: (id: string) => Effect.Effect<void, LoadError>
  readonly stats: Effect.Effect<CacheStats>
  /** The ids held, window first then main, least recently used first (for tests and diagnostics). */
  readonly keys: Effect.Effect<ReadonlyArray<string>>
}

/** The loading function: `registry.load` in the live layer. */
export type Lookup = (id: string) => Effect.Effect<StoreManager, LoadError>

interface Entry {
  readonly id: string
  value: StoreManager
  loadedAt: number
  /** After a failed reload: no new attempt before this time. */
  retryAt: number
  inMain: boolean
}

interface Flight {
  readonly deferred: Deferred.Deferred<StoreManager, LoadError>
  /** Set by invalidation: the result still answers its waiters but is not cached. */
  cancelled: boolean
}

export const make = (config: CacheConfig, lookup: Lookup, label = "managers") =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const metrics = M.forCache(label)
    const ttl = Duration.toMillis(config.ttl)
    const refreshAfter = config.refreshAhead >= 1 ? Infinity : ttl * config.refreshAhead
    const staleFor = Duration.toMillis(config.staleIfError)
    const failureTtl = Duration.toMillis(config.failureTtl)
    const windowCapacity = config.capacity < 2 ? config.capacity : Math.max(1, Math.floor(config.capacity / 100))
    const mainCapacity = config.capacity - windowCapacity

    // Map iteration order is insertion order: re-inserting on access keeps each map in LRU order.
    const window = new Map<string, Entry>()
    const main = new Map<string, Entry>()
    const failures = new Map<string, { readonly error: LoadError; readonly expiresAt: number }>()
    const flights = new Map<string, Flight>()
    const sketch = new FrequencySketch(config.capacity)
    const count = { hits: 0, misses: 0, loads: 0, loadFailures: 0, evictions: 0, expirations: 0, invalidations: 0, refreshes: 0, staleServed: 0 }

    const size = () => window.size + main.size
    const publishSize = () => metrics.size.unsafeUpdate(size(), [])
    const bump = (name: keyof typeof count, metric: { unsafeUpdate: (n: number, tags: []) => void }, n = 1) => {
      count[name] += n
      metric.unsafeUpdate(n, [])
    }

    const find = (id: string) => window.get(id) ?? main.get(id)

    const touch = (entry: Entry) => {
      const segment = entry.inMain ? main : window
      segment.delete(entry.id)
      segment.set(entry.id, entry)
    }

    const remove = (entry: Entry) => void (entry.inMain ? main : window).delete(entry.id)

    const oldest = (segment: Map<string, Entry>) => segment.values().next().value as Entry

    /** W-TinyLFU admission: new entries enter the window; its overflow competes for the main LRU. */
    const admit = (entry: Entry) => {
      window.set(entry.id, entry)
      if (window.size <= windowCapacity) return
      const candidate = oldest(window)
      window.delete(candidate.id)
      if (main.size < mainCapacity) {
        candidate.inMain = true
        main.set(candidate.id, candidate)
        return
      }
      bump("evictions", metrics.evictions)
      if (mainCapacity === 0) return
      const victim = oldest(main)
      if (sketch.frequency(candidate.id) > sketch.frequency(victim.id)) {
        main.delete(victim.id)
        candidate.inMain = true
        main.set(candidate.id, candidate)
      }
    }

    /** Records a finished load in the cache (unless invalidated meanwhile). */
    const settle = (id: string, flight: Flight, exit: Exit.Exit<StoreManager, LoadError>, now: number) => {
      if (flights.get(id) === flight) flights.delete(id)
      if (flight.cancelled) return
      const entry = find(id)
      if (Exit.isSuccess(exit)) {
        failures.delete(id)
        if (entry) {
          entry.value = exit.value
          entry.loadedAt = now
          entry.retryAt = 0
        } else {
          admit({ id, value: exit.value, loadedAt: now, retryAt: 0, inMain: false })
        }
      } else if (entry) {
        entry.retryAt = now + failureTtl
      } else if (failureTtl > 0 && !Cause.isInterruptedOnly(exit.cause)) {
        const failure = Cause.failureOption(exit.cause)
        if (failure._tag === "Some") {
          failures.delete(id)
          failures.set(id, { error: failure.value, expiresAt: now + failureTtl })
          if (failures.size > config.capacity) failures.delete(failures.keys().next().value as string)
        }
      }
      publishSize()
    }

    const runLoad = (id: string, flight: Flight, refreshing: boolean) =>
      Effect.suspend(() => {
        bump("loads", metrics.loads)
        if (refreshing) bump("refreshes", metrics.refreshes)
        return lookup(id)
      }).pipe(
        Effect.timed,
        Effect.map(([duration, value]) => {
          metrics.loadDuration.unsafeUpdate(Duration.toMillis(duration), [])
          return value
        }),
        Effect.onExit((exit) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            if (Exit.isFailure(exit)) bump("loadFailures", metrics.loadFailures)
            settle(id, flight, exit, now)
            return Deferred.done(flight.deferred, exit)
          })
        ),
        Effect.withSpan("ManagerCache.load", { attributes: { source: id, refresh: refreshing } })
      )

    /** The flight loading `id`, started if none is under way. Uninterruptible between check and fork. */
    const ensureFlight = (id: string, refreshing: boolean) =>
      Effect.uninterruptible(
        Effect.suspend(() => {
          const current = flights.get(id)
          if (current) return Effect.succeed(current)
          const flight: Flight = { deferred: Deferred.unsafeMake(FiberId.none), cancelled: false }
          flights.set(id, flight)
          // The load itself stays interruptible, so closing the cache's scope stops it.
          return Effect.as(Effect.forkIn(Effect.interruptible(Effect.exit(runLoad(id, flight, refreshing))), scope), flight)
        })
      )

    /**
     * Waits for a load; after a failure, an entry still in its stale-if-error window is served.
     * A caller that decided to wait may run after another caller's load finished: it then takes
     * the fresh entry instead of starting a second load.
     */
    const awaitLoad = (id: string, stale: Entry | undefined): Effect.Effect<StoreManager, LoadError> =>
      Effect.clockWith((clock) => {
        const current = find(id)
        if (current !== undefined && current !== stale && clock.unsafeCurrentTimeMillis() - current.loadedAt < ttl) {
          return Effect.succeed(current.value)
        }
        return Effect.flatMap(ensureFlight(id, stale !== undefined), (flight) =>
          stale === undefined
            ? Deferred.await(flight.deferred)
            : Effect.catchAll(Deferred.await(flight.deferred), (error) =>
                Effect.flatMap(Clock.currentTimeMillis, (now) => {
                  if (now < stale.loadedAt + ttl + staleFor && find(id) === stale) {
                    bump("staleServed", metrics.staleServed)
                    return Effect.as(Effect.logWarning(`serving a stale manager for ${id}: ${error.message}`), stale.value)
                  }
                  return Effect.fail(error)
                })
              )
        )
      })

    /**
     * The request path, synchronous: a manager (a hit), or an effect to run (a load to wait for,
     * a cached failure, a hit that starts a refresh).
     */
    const lookupNow = (id: string, now: number): StoreManager | Effect.Effect<StoreManager, LoadError> => {
      sketch.increment(id)
      const entry = find(id)
      if (entry !== undefined) {
        const age = now - entry.loadedAt
        if (age < ttl) {
          touch(entry)
          bump("hits", metrics.hits)
          if (age >= refreshAfter && now >= entry.retryAt && !flights.has(id)) {
            return Effect.as(ensureFlight(id, true), entry.value)
          }
          return entry.value
        }
        if (age < ttl + staleFor) {
          touch(entry)
          if (now < entry.retryAt) {
            // A reload failed less than failureTtl ago: serve stale without hammering the store.
            bump("hits", metrics.hits)
            bump("staleServed", metrics.staleServed)
            return entry.value
          }
          bump("misses", metrics.misses)
          return awaitLoad(id, entry)
        }
        remove(entry)
        bump("expirations", metrics.expirations)
      }
      bump("misses", metrics.misses)
      const failure = failures.get(id)
      if (failure !== undefined) {
        if (now < failure.expiresAt) return Effect.fail(failure.error)
        failures.delete(id)
      }
      return awaitLoad(id, undefined)
    }

    const get = (id: string): Effect.Effect<StoreManager, LoadError> =>
      Effect.clockWith((clock) => {
        const served = lookupNow(id, clock.unsafeCurrentTimeMillis())
        return Effect.isEffect(served) ? served : Effect.succeed(served)
      })

    const getMany = (ids: ReadonlyArray<string>) =>
      Effect.clockWith((clock) => {
        const now = clock.unsafeCurrentTimeMillis()
        const results: Array<Either.Either<StoreManager, LoadError> | undefined> = new Array(ids.length)
        const pending: Array<[number, Effect.Effect<StoreManager, LoadError>]> = []
        ids.forEach((id, i) => {
          const served = lookupNow(id, now)
          if (Effect.isEffect(served)) pending.push([i, served])
          else results[i] = Either.right(served)
        })
        if (pending.length === 0) return Effect.succeed(results as Array<Either.Either<StoreManager, LoadError>>)
        return Effect.as(
          Effect.forEach(pending, ([i, effect]) => Effect.map(Effect.either(effect), (r) => void (results[i] = r)), {
            concurrency: config.loadConcurrency,
            discard: true
          }),
          results as Array<Either.Either<StoreManager, LoadError>>
        )
      })

    const invalidateNow = (id: string) => {
      const flight = flights.get(id)
      if (flight) {
        flight.cancelled = true
        flights.delete(id)
      }
      failures.delete(id)
      const entry = find(id)
      if (entry) {
        remove(entry)
        bump("invalidations", metrics.invalidations)
        publishSize()
      }
    }

    const invalidateAll = Effect.sync(() => {
      for (const flight of flights.values()) flight.cancelled = true
      flights.clear()
      failures.clear()
      const dropped = size()
      window.clear()
      main.clear()
      if (dropped > 0) bump("invalidations", metrics.invalidations, dropped)
      publishSize()
    })

    const sweep = Effect.clockWith((clock) =>
      Effect.sync(() => {
        const now = clock.unsafeCurrentTimeMillis()
        for (const segment of [window, main]) {
          for (const entry of [...segment.values()]) {
            if (now - entry.loadedAt >= ttl + staleFor) {
              segment.delete(entry.id)
              bump("expirations", metrics.expirations)
            }
          }
        }
        for (const [id, failure] of [...failures]) if (now >= failure.expiresAt) failures.delete(id)
        publishSize()
      })
    )

    yield* Effect.forkIn(Effect.repeat(sweep, Schedule.spaced(config.sweepInterval)), scope)

    const stats = Effect.sync((): CacheStats => {
      const requests = count.hits + count.misses
      return { ...count, size: size(), hitRate: requests === 0 ? 0 : count.hits / requests }
    })

    return {
      get,
      getMany,
      invalidate: (id: string) => Effect.withSpan(Effect.sync(() => invalidateNow(id)), "ManagerCache.invalidate", { attributes: { source: id } }),
      invalidateAll: Effect.withSpan(invalidateAll, "ManagerCache.invalidateAll"),
      refresh: (id: string) =>
        Effect.suspend(() => ensureFlight(id, find(id) !== undefined)).pipe(
          Effect.flatMap((flight) => Deferred.await(flight.deferred)),
          Effect.asVoid,
          Effect.withSpan("ManagerCache.refresh", { attributes: { source: id } })
        ),
      stats,
      keys: Effect.sync(() => [...window.keys(), ...main.keys()]),
      /** Runs the sweep now (tests; the background fiber does it every `sweepInterval`). */
      sweep
    } satisfies ManagerCacheShape & { sweep: Effect.Effect<void> }
  })

export class ManagerCache extends Context.Tag("pantheon-persistence/ManagerCache")<ManagerCache, ManagerCacheShape>() {
  /**
   * Over `StoreManagerRegistry.load`, invalidated by the registry's catalog changes; `invalidate`
   * and `invalidateAll` are broadcast to the other instances of the backend.
   */
  static readonly layer: Layer.Layer<ManagerCache, never, StoreManagerRegistry | CacheSettings> = Layer.scoped(
    ManagerCache,
    Effect.gen(function* () {
      const registry = yield* StoreManagerRegistry
      const config = yield* CacheSettings
      const cache = yield* make(config, registry.load)
      yield* registry.watch((change) => {
        switch (change._tag) {
          case "Added":
            return Effect.void
          case "Invalidated":
            return change.id === null ? cache.invalidateAll : cache.invalidate(change.id)
          case "Resync":
            return cache.invalidateAll
          default:
            return cache.invalidate(change.id)
        }
      })
      // An explicit invalidation reaches the other instances that share the backend too.
      return {
        ...cache,
        invalidate: (id: string) => Effect.zipRight(cache.invalidate(id), registry.broadcastInvalidation(id)),
        invalidateAll: Effect.zipRight(cache.invalidateAll, registry.broadcastInvalidation(null))
      }
    })
  )
}

