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
import { Context, Effect, Exit, Layer } from "effect"
import * as LoadingCache from "../cache/LoadingCache.js"
import type { CacheConfig } from "../domain/config.js"
import type { LoadError } from "../domain/errors.js"
import { CacheSettings } from "./CacheSettings.js"
import type { StoreManager } from "./StoreManager.js"
import { StoreEvents } from "./StoreEvents.js"
import { StoreManagerRegistry } from "./StoreManagerRegistry.js"

export type ManagerCacheShape = LoadingCache.LoadingCache<string, StoreManager, LoadError>

/** The engine's options for a manager cache with this configuration over `lookup`. */
export const managerCacheOptions = (
  config: CacheConfig,
  lookup: (key: string) => Effect.Effect<StoreManager, LoadError>,
  label = "managers"
): LoadingCache.LoadingCacheOptions<string, StoreManager, LoadError> => ({
  capacity: config.capacity,
  lookup,
  timeToLive: Exit.match({ onFailure: () => config.failureTtl, onSuccess: () => config.ttl }),
  refreshAhead: config.refreshAhead,
  staleIfError: config.staleIfError,
  sweepInterval: config.sweepInterval,
  lookupConcurrency: config.loadConcurrency,
  label
})

export const make = Effect.gen(function* () {
  const registry = yield* StoreManagerRegistry
  const config = yield* CacheSettings
  const events = yield* StoreEvents
  const cache = yield* LoadingCache.makeWith(managerCacheOptions(config, registry.load))
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
