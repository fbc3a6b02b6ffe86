/**
 * Backends that need no database: a fixed list of Effect `StoreManager`s, and the caller's
 * `getStoreManagers()` (the Pantheon adapter's dependency), whose result is the catalog.
 */
import { Effect, Layer, Stream } from "effect"
import { CatalogUnavailable, errorReason, show, StoreUnavailable } from "../domain/errors.js"
import type { StoreDescriptor } from "../domain/schemas.js"
import { StoreBackend } from "../services/StoreBackend.js"
import type { StoreManager } from "../services/StoreManager.js"
import { type DualStoreManagerLike, fromLegacyManager, isDualStoreManagerLike } from "../stores/legacy.js"

const firstById = <A>(items: ReadonlyArray<A>, id: (a: A) => string): Map<string, A> => {
  const byId = new Map<string, A>()
  for (const item of items) if (!byId.has(id(item))) byId.set(id(item), item)
  return byId
}

/** A fixed list of managers: the catalog is their names, in order; opening one is free. */
export const managersBackend = (managers: ReadonlyArray<StoreManager>): Layer.Layer<StoreBackend> => {
  const byId = firstById(managers, (m) => m.name)
  const catalog: ReadonlyArray<StoreDescriptor> = [...byId.keys()].map((id) => ({ id }))
  return Layer.succeed(StoreBackend, {
    catalog: Effect.succeed(catalog),
    open: (descriptor) =>
      Effect.suspend(() => {
        const manager = byId.get(descriptor.id)
        return manager ? Effect.succeed(manager) : Effect.fail(new StoreUnavailable({ id: descriptor.id, reason: "not in the list of managers" }))
      }),
    changes: Stream.empty,
    broadcastInvalidation: () => Effect.void
  })
}

/**
 * The caller's `getStoreManagers()`: each call is one catalog read (cached by the registry for `ttl`),
 * and opening a source picks its manager from the latest read. Entries that lack a string `name` or
 * either query method are skipped; a result that is not an array fails the read.
 */
export const legacyBackend = (getStoreManagers: () => Promise<ReadonlyArray<unknown>> | ReadonlyArray<unknown>): Layer.Layer<StoreBackend> =>
  Layer.sync(StoreBackend, () => {
    let latest = new Map<string, DualStoreManagerLike>()
    return {
      catalog: Effect.tryPromise({
        try: async () => await getStoreManagers(),
        catch: (cause) => new CatalogUnavailable({ reason: `getStoreManagers() failed: ${errorReason(cause)}`, cause })
      }).pipe(
        Effect.flatMap((result) => {
          if (!Array.isArray(result)) {
            return Effect.fail(
              new CatalogUnavailable({ reason: `getStoreManagers() resolved to ${show(result)}, expected an array of store managers` })
            )
          }
          latest = firstById(result.filter(isDualStoreManagerLike), (m) => m.name)
          return Effect.succeed([...latest.keys()].map((id): StoreDescriptor => ({ id })))
        })
      ),
      open: (descriptor) =>
        Effect.suspend(() => {
          const manager = latest.get(descriptor.id)
          return manager
            ? Effect.succeed(fromLegacyManager(manager))
            : Effect.fail(new StoreUnavailable({ id: descriptor.id, reason: "getStoreManagers() no longer returns it" }))
        }),
      changes: Stream.empty,
      broadcastInvalidation: () => Effect.void
    }
  })
