/**
 * Backends that need no database, for one process (their events are local): a fixed list of
 * Effect `StoreManager`s, and the caller's `getStoreManagers()` (the Pantheon adapter's dependency),
 * whose result is the catalog.
 */
import { Effect, Layer } from "effect"
import { CatalogUnavailable, errorReason, show, StoreUnavailable } from "../domain/errors.js"
import { managerKey, type StoreDescriptor } from "../domain/schemas.js"
import { StoreBackend } from "../services/StoreBackend.js"
import { StoreEvents } from "../services/StoreEvents.js"
import type { StoreManager } from "../services/StoreManager.js"
import { type DualStoreManagerLike, fromPromiseManager, isDualStoreManagerLike } from "../stores/promise.js"

/**
 * One descriptor per manager, in order. Two managers with one name both serve that id (the
 * reference queries each of them); the second and later get keys of their own.
 */
const describe = <M extends { readonly name: string }>(managers: ReadonlyArray<M>): Array<{ descriptor: StoreDescriptor; manager: M }> => {
  const seen = new Map<string, number>()
  return managers.map((manager) => {
    const n = (seen.get(manager.name) ?? 0) + 1
    seen.set(manager.name, n)
    return { descriptor: n === 1 ? { id: manager.name } : { id: manager.name, key: `${manager.name}\u0000${n}` }, manager }
  })
}

const byKey = <M>(described: ReadonlyArray<{ descriptor: StoreDescriptor; manager: M }>) =>
  new Map(described.map(({ descriptor, manager }) => [managerKey(descriptor), manager]))

/** A fixed list of managers: the catalog is their names, in order; opening one is free. */
export const managersBackend = (managers: ReadonlyArray<StoreManager>): Layer.Layer<StoreBackend | StoreEvents> => {
  const described = describe(managers)
  const index = byKey(described)
  const catalog = described.map((d) => d.descriptor)
  return Layer.merge(
    Layer.succeed(StoreBackend, {
      catalog: Effect.succeed(catalog),
      open: (descriptor) =>
        Effect.suspend(() => {
          const manager = index.get(managerKey(descriptor))
          return manager ? Effect.succeed(manager) : Effect.fail(new StoreUnavailable({ id: descriptor.id, reason: "not in the list of managers" }))
        })
    }),
    StoreEvents.layerLocal
  )
}

/**
 * The caller's `getStoreManagers()`: each call is one catalog read (cached by the registry for `ttl`),
 * and opening a source picks its manager from the latest read. Entries that lack a string `name` or
 * either query method are skipped; a result that is not an array fails the read.
 */
export const promiseBackend = (
  getStoreManagers: () => Promise<ReadonlyArray<unknown>> | ReadonlyArray<unknown>
): Layer.Layer<StoreBackend | StoreEvents> =>
  Layer.merge(
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
            const described = describe(result.filter(isDualStoreManagerLike))
            latest = byKey(described)
            return Effect.succeed(described.map((d) => d.descriptor))
          })
        ),
        open: (descriptor) =>
          Effect.suspend(() => {
            const manager = latest.get(managerKey(descriptor))
            return manager
              ? Effect.succeed(fromPromiseManager(manager))
              : Effect.fail(new StoreUnavailable({ id: descriptor.id, reason: "getStoreManagers() no longer returns it" }))
          })
      }
    }),
    StoreEvents.layerLocal
  )
