/**
 * StoreManagerRegistry: the registry of sources (the catalog a backend lists) and how to open the
 * store manager of one. It opens; `ManagerCache` keeps what it opened.
 *
 * - `catalog` is one entry of the cache engine: served for `ttl` (a failed read for `failureTtl`);
 *   concurrent readers share one read, an interrupted reader never fails the others, and memory
 *   stays flat over any number of reloads.
 * - A read is a `Catalog` (domain/catalog.ts): descriptors by manager key and by source id.
 * - Each read is compared with the previous one; the differences, by source id, are published as `StoreEvents`
 *   (this instance only) before the read returns, so a compile that sees a new catalog never gets a
 *   manager of the old one (the manager cache drops changed and removed sources on those events).
 * - An event saying the catalog changed elsewhere (a registration on another instance, a resync)
 *   drops the cached catalog, unless the latest read already shows the change.
 * - `load(descriptor)` opens the manager of a descriptor of the catalog, within `loadTimeout`
 *   (the compile hands over the descriptors it holds; a manager key is looked up in the cached
 *   catalog); uncached here.
 */
import { Cause, Context, Duration, Effect, Exit, Layer } from "effect"
import * as LoadingCache from "../cache/LoadingCache.js"
import { type Catalog, diffCatalogs, findManager, makeCatalog, sourceFingerprint } from "../domain/catalog.js"
import { CatalogUnavailable, type LoadError, StoreUnavailable } from "../domain/errors.js"
import type { StoreEvent } from "../domain/events.js"
import type { StoreDescriptor } from "../domain/schemas.js"
import { CacheSettings } from "./CacheSettings.js"
import { StoreBackend } from "./StoreBackend.js"
import type { StoreManager } from "./StoreManager.js"
import { StoreEvents } from "./StoreEvents.js"

export { diffCatalogs } from "../domain/catalog.js"

export interface StoreManagerRegistryShape {
  /** The catalog: every manager's descriptor in catalog order, by key and by source id (cached). */
  readonly catalog: Effect.Effect<Catalog, CatalogUnavailable>
  /**
   * Opens a manager: of a descriptor of the catalog (as the compile does: no catalog read), or of
   * the manager key of one (`managerKey`; the catalog is read, from its cache). Uncached: the expensive call.
   */
  readonly load: (manager: StoreDescriptor | string) => Effect.Effect<StoreManager, LoadError>
  /** Drops the cached catalog: the next read fetches it again. */
  readonly invalidateCatalog: Effect.Effect<void>
}

const CATALOG = "catalog"

export const make = Effect.gen(function* () {
  const backend = yield* StoreBackend
  const config = yield* CacheSettings
  const events = yield* StoreEvents
  /** The latest successful read: what the next read is compared with, and what events are checked against. */
  let latest: Catalog | undefined

  const fetchCatalog = backend.catalog.pipe(
    Effect.timeoutFail({
      duration: config.loadTimeout,
      onTimeout: () => new CatalogUnavailable({ reason: `reading the catalog took longer than ${Duration.format(config.loadTimeout)}` })
    }),
    Effect.catchAllDefect((defect) => Effect.fail(new CatalogUnavailable({ reason: `reading the catalog crashed: ${Cause.pretty(Cause.die(defect))}`, cause: defect }))),
    Effect.map(makeCatalog),
    Effect.tap((catalog) => {
      const changes = diffCatalogs(latest, catalog)
      latest = catalog
      return Effect.forEach(changes, events.publishLocal, { discard: true })
    }),
    Effect.withSpan("StoreManagerRegistry.fetchCatalog")
  )

  const cache = yield* LoadingCache.makeWith({
    capacity: 1,
    lookup: (_: typeof CATALOG) => fetchCatalog,
    timeToLive: Exit.match({ onFailure: () => config.failureTtl, onSuccess: () => config.ttl }),
    label: "catalog"
  })

  const catalog = cache.get(CATALOG)

  const open = (descriptor: StoreDescriptor) =>
    backend.open(descriptor, { warmBytes: config.warmBytes }).pipe(
      Effect.timeoutFail({
        duration: config.loadTimeout,
        onTimeout: () => new StoreUnavailable({ id: descriptor.id, reason: `opening the store took longer than ${Duration.format(config.loadTimeout)}` })
      }),
      Effect.catchAllDefect((defect) =>
        Effect.fail(new StoreUnavailable({ id: descriptor.id, reason: `opening the store crashed: ${Cause.pretty(Cause.die(defect))}`, cause: defect }))
      )
    )

  const load = Effect.fn("StoreManagerRegistry.load")(function* (manager: StoreDescriptor | string) {
    yield* Effect.annotateCurrentSpan("source", typeof manager === "string" ? manager : manager.id)
    return yield* open(typeof manager === "string" ? yield* findManager(yield* catalog, manager) : manager)
  })

  /** Whether the latest read already shows what the event says (then the cached catalog is current). */
  const reflected = (event: StoreEvent): boolean => {
    if (latest === undefined) return true
    switch (event._tag) {
      case "SourceAdded":
      case "SourceChanged":
        return latest.bySource(event.id).length > 0 && sourceFingerprint(latest, event.id) === event.fingerprint
      case "SourceRemoved":
        return latest.bySource(event.id).length === 0
      case "Resync":
        return false
      default:
        return true
    }
  }
  yield* events.subscribe((event) => (reflected(event) ? Effect.void : cache.invalidate(CATALOG)))

  return { catalog, load, invalidateCatalog: cache.invalidate(CATALOG) } satisfies StoreManagerRegistryShape
})

export class StoreManagerRegistry extends Context.Tag("pantheon-persistence/StoreManagerRegistry")<
  StoreManagerRegistry,
  StoreManagerRegistryShape
>() {
  static readonly layer: Layer.Layer<StoreManagerRegistry, never, StoreBackend | StoreEvents | CacheSettings> = Layer.scoped(StoreManagerRegistry, make)
}
