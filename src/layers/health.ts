import { Effect, Either } from "effect"
import { ManagerCache } from "../services/ManagerCache.js"
import { SlowSources } from "../services/SlowSources.js"
import { StoreEvents } from "../services/StoreEvents.js"
import { StoreManagerRegistry } from "../services/StoreManagerRegistry.js"

/**
 * The health report: "ok" when the catalog can be read (within 2 s) and events from other instances
 * arrive. `slowSources` lists the sources whose latest compile had a query past `queryTimeout`
 * (SlowSources); they do not make the report "degraded": restarting this process would not speed
 * up a store.
 */
export const health = Effect.gen(function* () {
  const registry = yield* StoreManagerRegistry
  const cache = yield* ManagerCache
  const events = yield* StoreEvents
  const slow = yield* SlowSources
  const catalog = yield* Effect.either(Effect.timeout(registry.catalog, "2 seconds"))
  const listener = yield* events.connected
  const ok = Either.isRight(catalog) && listener
  return {
    status: ok ? ("ok" as const) : ("degraded" as const),
    store: Either.isRight(catalog) ? { reachable: true, sources: catalog.right.sources.length, managers: catalog.right.descriptors.length, listener } : { reachable: false, error: catalog.left.message, listener },
    cache: yield* cache.stats,
    slowSources: yield* slow.report
  }
})
