/**
 * Backends that need no database, for one process (their events are local): a fixed list of
 * Effect `StoreManager`s, and the caller's `getStoreManagers()` (the Pantheon adapter's dependency),
 * whose result is the catalog.
 */
import { Effect, Layer } from "effect"
import { CatalogUnavailable, show } from "../domain/errors.js"
import type { StoreDescriptor } from "../domain/schemas.js"
import { StoreBackend } from "../services/StoreBackend.js"
import { StoreEvents } from "../services/StoreEvents.js"
import type { StoreManager } from "../services/StoreManager.js"
import { type DualStoreManagerLike, fromPromiseManager, isDualStoreManagerLike } from "../stores/promise.js"

/** A manager of a list, described: its source id (its name), its key, and the manager itself. */
interface Listed<M> extends StoreDescriptor {
  readonly manager: M
}

/**
 * One descriptor per manager, in order. Two managers with one name both serve that source (the
 * reference queries each of them); the second and later get keys of their own.
 */
const describe = <M extends { readonly name: string }>(managers: ReadonlyArray<M>): Array<Listed<M>> => {
  const seen = new Map<string, number>()
  return managers.map((manager) => {
    const n = (seen.get(manager.name) ?? 0) + 1
    seen.set(manager.name, n)
    return n === 1 ? { id: manager.name, manager } : { id: manager.name, key: `${manager.name}\u0000${n}`, manager }
  })
}

/** A fixed list of managers: the catalog is their names, in order; opening one is free. */
export const managersBackend = (managers: ReadonlyArray<StoreManager>): Layer.Layer<StoreBackend | StoreEvents> => {
  const catalog = describe(managers)
  return Layer.merge(
    StoreBackend.layer({ catalog: Effect.succeed(catalog), open: (listed: Listed<StoreManager>) => Effect.succeed(listed.manager) }),
    StoreEvents.layerLocal
  )
}

/**
 * The caller's `getStoreManagers()`: each call is one catalog read (cached by the registry for `ttl`),
 * whose descriptors hold the managers it returned. Entries that lack a string `name` or either
 * query method are skipped; a result that is not an array fails the read.
 */
export const promiseBackend = (
  getStoreManagers: () => Promise<ReadonlyArray<unknown>> | ReadonlyArray<unknown>
): Layer.Layer<StoreBackend | StoreEvents> =>
  Layer.merge(
    StoreBackend.layer({
      catalog: Effect.tryPromise({
        try: async () => await getStoreManagers(),
        catch: CatalogUnavailable.failed("getStoreManagers()")
      }).pipe(
        Effect.flatMap((result) =>
          Array.isArray(result)
            ? Effect.succeed(describe(result.filter(isDualStoreManagerLike)))
            : Effect.fail(new CatalogUnavailable({ reason: `getStoreManagers() resolved to ${show(result)}, expected an array of store managers` }))
        )
      ),
      open: (listed: Listed<DualStoreManagerLike>) => Effect.sync(() => fromPromiseManager(listed.manager))
    }),
    StoreEvents.layerLocal
  )
