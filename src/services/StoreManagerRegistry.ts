/**
 * StoreManagerRegistry: the registry of sources (the catalog a backend lists) and how to open the
 * store manager of one. It opens; `ManagerCache` keeps what it opened.
 *
 * - `catalog` is one entry of the cache engine: served for `ttl` (a failed read for `failureTtl`);
 *   concurrent readers share one read, an interrupted reader never fails the others, and memory
 *   stays flat over any number of reloads.
 * - Each read is compared with the previous one; the differences are published as `StoreEvents`
 *   (this instance only) before the read returns, so a compile that sees a new catalog never gets a
 *   manager of the old one (the manager cache drops changed and removed sources on those events).
 * - An event saying the catalog changed elsewhere (a registration on another instance, a resync)
 *   drops the cached catalog, unless the latest read already shows the change.
 * - `load(key)` opens the manager of a source of the catalog, within `loadTimeout`; uncached here.
 */
import { Cause, Context, Duration, Effect, Exit, Layer } from "effect"
import * as LoadingCache from "../cache/LoadingCache.js"
import { CatalogUnavailable, type LoadError, StoreNotFound, StoreUnavailable } from "../domain/errors.js"
import { SourceAdded, SourceChanged, SourceRemoved, type StoreEvent } from "../domain/events.js"
import { managerKey, type StoreDescriptor } from "../domain/schemas.js"
import { CacheSettings } from "./CacheSettings.js"
import { StoreBackend } from "./StoreBackend.js"
import type { StoreManager } from "./StoreManager.js"
import { StoreEvents } from "./StoreEvents.js"

export interface StoreManagerRegistryShape {
  /** The descriptors of all sources' managers, in catalog order (cached). */
  readonly catalog: Effect.Effect<ReadonlyArray<StoreDescriptor>, CatalogUnavailable>
  /** Opens the manager with this key (`managerKey`) of the current catalog: uncached, the expensive call. */
  readonly load: (key: string) => Effect.Effect<StoreManager, LoadError>
  /** Drops the cached catalog: the next read fetches it again. */
  readonly invalidateCatalog: Effect.Effect<void>
}

/** One catalog read, indexed by manager key. */
interface Catalog {
  readonly descriptors: ReadonlyArray<StoreDescriptor>
  readonly byKey: ReadonlyMap<string, StoreDescriptor>
}

const CATALOG = "catalog"

/** The events that turn one catalog read into the next, in the order of the new one (removals last). */
export const diffCatalogs = (before: Catalog | undefined, after: Catalog): Array<StoreEvent> => {
  if (before === undefined) return []
  const events: Array<StoreEvent> = []
  for (const [key, d] of after.byKey) {
    const previous = before.byKey.get(key)
    const fingerprint = d.fingerprint === undefined ? {} : { fingerprint: d.fingerprint }
    if (previous === undefined) events.push(SourceAdded.make({ id: key, ...fingerprint }))
    else if (previous.fingerprint !== d.fingerprint) events.push(SourceChanged.make({ id: key, ...fingerprint }))
  }
  for (const key of before.byKey.keys()) if (!after.byKey.has(key)) events.push(SourceRemoved.make({ id: key }))
  return events
}

const indexed = (descriptors: ReadonlyArray<StoreDescriptor>): Catalog => ({
  descriptors,
  byKey: new Map(descriptors.map((d) => [managerKey(d), d]))
})

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
    Effect.map(indexed),
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

  const catalog = Effect.map(cache.get(CATALOG), (c) => c.descriptors)

  const load = Effect.fn("StoreManagerRegistry.load")(function* (key: string) {
    yield* Effect.annotateCurrentSpan("source", key)
    const descriptor = (yield* cache.get(CATALOG)).byKey.get(key)
    if (descriptor === undefined) return yield* new StoreNotFound({ id: key })
    return yield* backend.open(descriptor, { warmBytes: config.warmBytes }).pipe(
      Effect.timeoutFail({
        duration: config.loadTimeout,
        onTimeout: () => new StoreUnavailable({ id: descriptor.id, reason: `opening the store took longer than ${Duration.format(config.loadTimeout)}` })
      }),
      Effect.catchAllDefect((defect) =>
        Effect.fail(new StoreUnavailable({ id: descriptor.id, reason: `opening the store crashed: ${Cause.pretty(Cause.die(defect))}`, cause: defect }))
      )
    )
  })

  /** Whether the latest read already shows what the event says (then the cached catalog is current). */
  const reflected = (event: StoreEvent): boolean => {
    const current = latest?.byKey
    if (current === undefined) return true
    switch (event._tag) {
      case "SourceAdded":
      case "SourceChanged":
        return current.get(event.id)?.fingerprint === event.fingerprint && current.has(event.id)
      case "SourceRemoved":
        return !current.has(event.id)
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
