/**
 * ManagerCache: the store managers of the sources, loaded once and shared. Its service value **is**
 * a `Cache` (the engine of src/cache, an Effect `Cache.Cache`) over `StoreManagerRegistry.load`,
 * keyed by manager key (`managerKey`: the source id, unless several managers serve one source),
 * configured by `CacheSettings`: `ttl`, `failureTtl`, `capacity`, `refreshAhead`, `staleIfError`,
 * `sweepInterval`, `loadConcurrency`. Two members of its own speak of sources: `getManagers`
 * (the compile's: each miss opens the catalog descriptor it is given) and `invalidateSource`.
 *
 * It follows `StoreEvents`: a source changed or removed, or an `Invalidated` event, drops every
 * manager of that source; `Invalidated(null)` and a `Resync` drop them all. `invalidateSource(id)`
 * and `invalidate(key)` act on this instance only; to drop a source on every instance, publish
 * `Invalidated` (the Promise facade's `invalidate` does).
 */
import { Context, Effect, type Either, Exit, Layer, Metric, Schedule } from "effect"
import * as LoadingCache from "../cache/LoadingCache.js"
import { findManager } from "../domain/catalog.js"
import type { LoadingCache as Cache } from "../cache/LoadingCache.js"
import type { CacheConfig } from "../domain/config.js"
import type { LoadError } from "../domain/errors.js"
import { managerKey, type StoreDescriptor } from "../domain/schemas.js"
import * as M from "../metrics.js"
import { CacheSettings } from "./CacheSettings.js"
import type { StoreManager } from "./StoreManager.js"
import { StoreEvents } from "./StoreEvents.js"
import { StoreManagerRegistry } from "./StoreManagerRegistry.js"

export interface ManagerCacheShape extends Cache<string, StoreManager, LoadError> {
  /**
   * The managers of these catalog descriptors, in order, each its manager or its load error; a
   * miss opens the descriptor given (no second catalog read). Loads start together, as `getMany`'s.
   */
  readonly getManagers: (descriptors: ReadonlyArray<StoreDescriptor>) => Effect.Effect<Array<Either.Either<StoreManager, LoadError>>>
  /** Drops every manager of a source (however many serve it, whatever their keys) on this instance. */
  readonly invalidateSource: (id: string) => Effect.Effect<void>
}

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
export const bytesHeld = (cache: LoadingCache.LoadingCache<string, StoreManager, LoadError>): Effect.Effect<number> =>
  Effect.map(cache.values, (managers) => managers.reduce((sum, m) => sum + (m.weight?.() ?? 0), 0))

export const make = Effect.gen(function* () {
  const registry = yield* StoreManagerRegistry
  const config = yield* CacheSettings
  const events = yield* StoreEvents
  /** The source of each key opened through this cache: what dropping a source drops (a key need not be its source's id). */
  const sourceOf = new Map<string, string>()
  const open = (descriptor: StoreDescriptor) =>
    Effect.zipRight(Effect.sync(() => void sourceOf.set(managerKey(descriptor), descriptor.id)), registry.load(descriptor))
  const options = managerCacheOptions(config, (key) => Effect.flatMap(Effect.flatMap(registry.catalog, (catalog) => findManager(catalog, key)), open))
  const cache: LoadingCache.LoadingCache<string, StoreManager, LoadError> = yield* LoadingCache.makeWith({
    ...options,
    // A key the cache let go of for good is forgotten (a key loaded again meanwhile is still held).
    onRemoval: (key, manager, cause) =>
      Effect.zipRight(
        Effect.flatMap(cache.contains(key), (held) => (held ? Effect.void : Effect.sync(() => void sourceOf.delete(key)))),
        options.onRemoval!(key, manager, cause)
      )
  })

  const getManagers = (descriptors: ReadonlyArray<StoreDescriptor>) => cache.getMany(descriptors.map(managerKey), (_, i) => open(descriptors[i]!))

  const invalidateSource = (id: string) =>
    Effect.suspend(() => {
      const keys: Array<string> = []
      for (const [key, source] of sourceOf) if (source === id) keys.push(key)
      for (const key of keys) sourceOf.delete(key)
      return Effect.forEach(keys, (key) => cache.invalidate(key), { discard: true })
    })

  const invalidateAll = Effect.zipRight(Effect.sync(() => sourceOf.clear()), cache.invalidateAll)

  // The bytes warm managers hold, published as a metric every `sweepInterval` (a fiber of its own).
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
        return invalidateSource(event.id)
      case "Invalidated":
        return event.id === null ? invalidateAll : invalidateSource(event.id)
      case "Resync":
        return invalidateAll
      default:
        return Effect.void
    }
  })
  // The engine itself, with the two members that speak of sources.
  return Object.assign(cache, { getManagers, invalidateSource }) satisfies ManagerCacheShape
})

export class ManagerCache extends Context.Tag("pantheon-persistence/ManagerCache")<ManagerCache, ManagerCacheShape>() {
  static readonly layer: Layer.Layer<ManagerCache, never, StoreManagerRegistry | StoreEvents | CacheSettings> = Layer.scoped(ManagerCache, make)
}
