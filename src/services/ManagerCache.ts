/**
 * ManagerCache: the store managers of the sources, loaded once and shared. Its service value **is**
 * a `Cache` (the engine of src/cache, an Effect `Cache.Cache`) over `StoreManagerRegistry.load`,
 * keyed by manager key (the source id, see `managerKey`), configured by `CacheSettings`:
 * `ttl`, `failureTtl`, `capacity`, `refreshAhead`, `staleIfError`, `sweepInterval`, `loadConcurrency`.
 *
 * It follows `StoreEvents`: a source changed or removed, or an `Invalidated` event, drops that
 * source's manager; `Invalidated(null)` and a `Resync` drop them all. `cache.invalidate(id)` acts on
 * this instance only; to drop a manager on every instance, publish `Invalidated` (the Promise
 * facade's `invalidate` does).
 */
import { Context, Effect, Exit, Layer, Metric, Schedule } from "effect"
import * as LoadingCache from "../cache/LoadingCache.js"
import type { LoadingCache as Cache } from "../cache/LoadingCache.js"
import type { CacheConfig } from "../domain/config.js"
import type { LoadError } from "../domain/errors.js"
import * as M from "../metrics.js"
import { CacheSettings } from "./CacheSettings.js"
import type { StoreManager } from "./StoreManager.js"
import { StoreEvents } from "./StoreEvents.js"
import { StoreManagerRegistry } from "./StoreManagerRegistry.js"

export type ManagerCacheShape = Cache<string, StoreManager, LoadError>

/**
 * The engine's options for a manager cache with this configuration over `lookup`.
 *
 * Weights: the budget `warmBytes` is cut into `capacity` slots; a manager weighs the slots its
 * bytes fill (at least one: a handle with no data is one slot) and the cache holds `capacity`
 * slots. So at most `capacity` managers are held, warm managers hold at most `warmBytes` between
 * them, and the eviction policy sizes its regions in slots as it would in entries.
 * A manager that leaves the cache (evicted, expired, invalidated, replaced by a reload) is told
 * through `release`, after the request that dropped it.
 * A reload after `ttl` refreshes a manager that can bring itself up to date (a warm manager reads
 * only what is new) instead of opening the source again.
 */
export const managerCacheOptions = (
  config: CacheConfig,
  lookup: (key: string) => Effect.Effect<StoreManager, LoadError>,
  label = "managers"
): LoadingCache.LoadingCacheOptions<string, StoreManager, LoadError> => {
  const slotBytes = config.warmBytes / config.capacity
  return {
    capacity: config.capacity,
    lookup,
    reload: (key, previous) => previous.refresh ?? lookup(key),
    weigher: (_key, manager) => (slotBytes > 0 ? Math.max(1, Math.ceil((manager.weight?.() ?? 0) / slotBytes)) : 1),
    maxWeight: config.capacity,
    timeToLive: Exit.match({ onFailure: () => config.failureTtl, onSuccess: () => config.ttl }),
    refreshAhead: config.refreshAhead,
    staleIfError: config.staleIfError,
    sweepInterval: config.sweepInterval,
    lookupConcurrency: config.loadConcurrency,
    // A manager the cache let go of stops what it runs in the background (a warm manager's read) and releases what it holds.
    onRemoval: (_key, manager) => manager.release ?? Effect.void,
    label
  }
}

/** Bytes the held managers keep in memory (warm managers' entries and vectors). */
export const bytesHeld = (cache: ManagerCacheShape): Effect.Effect<number> =>
  Effect.map(cache.values, (managers) => managers.reduce((sum, m) => sum + (m.weight?.() ?? 0), 0))

export const make = Effect.gen(function* () {
  const registry = yield* StoreManagerRegistry
  const config = yield* CacheSettings
  const events = yield* StoreEvents
  const cache = yield* LoadingCache.makeWith(managerCacheOptions(config, registry.load))
  // The bytes warm managers hold, published as a metric with the sweep.
  yield* Effect.forkScoped(
    Effect.repeat(
      Effect.flatMap(bytesHeld(cache), (bytes) => Metric.set(M.warmBytes, bytes)),
      Schedule.spaced(config.sweepInterval)
    )
  )
  yield* events.subscribe((event) => {
    switch (event._tag) {
      case "SourceChanged":
      case "SourceRemoved":
        return cache.invalidate(event.id)
      case "Invalidated":
        return event.id === null ? cache.invalidateAll : cache.invalidate(event.id)
      case "Resync":
        return cache.invalidateAll
      default:
        return Effect.void
    }
  })
  return cache satisfies ManagerCacheShape
})

export class ManagerCache extends Context.Tag("pantheon-persistence/ManagerCache")<ManagerCache, ManagerCacheShape>() {
  static readonly layer: Layer.Layer<ManagerCache, never, StoreManagerRegistry | StoreEvents | CacheSettings> = Layer.scoped(ManagerCache, make)
}
