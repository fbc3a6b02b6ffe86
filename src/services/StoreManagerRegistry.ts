/**
 * StoreManagerRegistry: which sources exist (the catalog) and how to open one (`load`).
 *
 * - `catalog` is cached with `Cache.makeWith` for `ttl` (a failed read for `failureTtl`); concurrent
 *   readers share one read, and a reader that is interrupted never fails the others (the read runs in
 *   a fiber owned by the registry).
 * - Each read is compared with the previous one; the differences (added, removed, changed
 *   descriptors) go to `changes` and to the `watch` handlers, which run before the read returns, so a
 *   compile that sees a new catalog never gets a manager of the old one.
 * - `load(id)` opens a manager; it is uncached here: `ManagerCache` caches it.
 */
import { Cache, Context, Duration, Effect, Exit, Fiber, Layer, Metric, PubSub, Scope, Stream } from "effect"
import { CacheSettings } from "../domain/config.js"
import { CatalogUnavailable, type LoadError, StoreNotFound, StoreUnavailable } from "../domain/errors.js"
import type { CatalogChange, StoreDescriptor } from "../domain/schemas.js"
import * as M from "../metrics.js"
import { StoreBackend } from "./StoreBackend.js"
import type { StoreManager } from "./StoreManager.js"

export interface StoreManagerRegistryShape {
  /** The descriptors of all sources, in catalog order (cached). */
  readonly catalog: Effect.Effect<ReadonlyArray<StoreDescriptor>, CatalogUnavailable>
  /** Opens the manager for one source (uncached: the expensive call). */
  readonly load: (id: string) => Effect.Effect<StoreManager, LoadError>
  /** Opens several managers in parallel, at most `loadConcurrency` at a time. */
  readonly loadMany: (ids: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<StoreManager>, LoadError>
  /** Catalog changes as they are found (a re-read that differs, or a change the backend broadcasts). */
  readonly changes: Stream.Stream<CatalogChange>
  /** The same changes, subscribed now: nothing published after this returns is missed. */
  readonly subscribe: Effect.Effect<Stream.Stream<CatalogChange>, never, Scope.Scope>
  /** Runs `handler` on every change, before the catalog read that found it returns. */
  readonly watch: (handler: (change: CatalogChange) => Effect.Effect<void>) => Effect.Effect<void, never, Scope.Scope>
  /** Drops the cached catalog: the next read fetches it again. */
  readonly invalidateCatalog: Effect.Effect<void>
  /** How many times the catalog was fetched from the backend. */
  readonly catalogFetches: Effect.Effect<number>
  /** Tells the other instances sharing the backend to drop a manager (`null`: all). */
  readonly broadcastInvalidation: (id: string | null) => Effect.Effect<void>
}

const CATALOG = "catalog"
const metrics = M.forCache("catalog")

/** Differences between two catalog reads, in the order of the new one (removals last). */
export const diffCatalogs = (
  before: ReadonlyArray<StoreDescriptor> | undefined,
  after: ReadonlyArray<StoreDescriptor>
): Array<CatalogChange> => {
  if (before === undefined) return []
  const old = new Map(before.map((d) => [d.id, d]))
  const changes: Array<CatalogChange> = []
  const seen = new Set<string>()
  for (const d of after) {
    seen.add(d.id)
    const prev = old.get(d.id)
    if (prev === undefined) changes.push({ _tag: "Added", id: d.id, descriptor: d })
    else if (prev.fingerprint !== d.fingerprint) changes.push({ _tag: "Changed", id: d.id, descriptor: d })
  }
  for (const d of before) if (!seen.has(d.id)) changes.push({ _tag: "Removed", id: d.id })
  return changes
}

export const make = Effect.gen(function* () {
  const backend = yield* StoreBackend
  const config = yield* CacheSettings
  const scope = yield* Effect.scope
  const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<CatalogChange>(), PubSub.shutdown)
  const handlers = new Set<(change: CatalogChange) => Effect.Effect<void>>()
  let previous: ReadonlyArray<StoreDescriptor> | undefined
  let fetches = 0

  const announce = (changes: ReadonlyArray<CatalogChange>) =>
    changes.length === 0
      ? Effect.void
      : Effect.forEach(changes, (change) =>
          Effect.zipRight(
            Effect.forEach([...handlers], (h) => h(change), { discard: true }),
            PubSub.publish(pubsub, change)
          ), { discard: true })

  const fetchCatalog = Effect.suspend(() => {
    fetches++
    return backend.catalog
  }).pipe(
    Effect.timeoutFail({
      duration: config.loadTimeout,
      onTimeout: () => new CatalogUnavailable({ reason: `reading the catalog took longer than ${Duration.format(config.loadTimeout)}` })
    }),
    Metric.trackDuration(Metric.mapInput(metrics.loadDuration, (d: Duration.Duration) => Duration.toMillis(d))),
    Effect.tap((catalog) => {
      const changes = diffCatalogs(previous, catalog)
      previous = catalog
      return announce(changes)
    }),
    Effect.tapBoth({
      onFailure: () => Effect.zipRight(Metric.increment(metrics.loads), Metric.increment(metrics.loadFailures)),
      onSuccess: () => Metric.increment(metrics.loads)
    }),
    Effect.withSpan("StoreManagerRegistry.fetchCatalog")
  )

  const cache = yield* Cache.makeWith({
    capacity: 1,
    lookup: (_: typeof CATALOG) => fetchCatalog,
    timeToLive: Exit.match({ onFailure: () => config.failureTtl, onSuccess: () => config.ttl })
  })

  // The lookup runs in a fiber of the registry's scope, so an interrupted reader never fails the others.
  const catalog = Effect.flatMap(cache.getOptionComplete(CATALOG), (cached) => {
    if (cached._tag === "Some") {
      metrics.hits.unsafeUpdate(1, [])
      return Effect.succeed(cached.value)
    }
    metrics.misses.unsafeUpdate(1, [])
    return Effect.flatMap(Effect.forkIn(cache.get(CATALOG), scope), Fiber.join)
  })

  const load = Effect.fn("StoreManagerRegistry.load")(function* (id: string) {
    yield* Effect.annotateCurrentSpan("source", id)
    const descriptors = yield* catalog
    const descriptor = descriptors.find((d) => d.id === id)
    if (descriptor === undefined) return yield* new StoreNotFound({ id })
    return yield* backend.open(descriptor).pipe(
      Effect.timeoutFail({
        duration: config.loadTimeout,
        onTimeout: () => new StoreUnavailable({ id, reason: `opening the store took longer than ${Duration.format(config.loadTimeout)}` })
      })
    )
  })

  const loadMany = (ids: ReadonlyArray<string>) => Effect.forEach(ids, load, { concurrency: config.loadConcurrency })

  // Changes the backend broadcasts (a registration, another instance's NOTIFY): the catalog is stale.
  // After a resync the catalog is re-read at once, so the differences are announced.
  yield* backend.changes.pipe(
    Stream.runForEach((change) => {
      switch (change._tag) {
        case "Invalidated":
          return announce([change])
        case "Resync":
          return cache.invalidate(CATALOG).pipe(
            Effect.zipRight(Effect.ignoreLogged(catalog)),
            Effect.zipRight(announce([change]))
          )
        default:
          return Effect.zipRight(cache.invalidate(CATALOG), announce([change]))
      }
    }),
    Effect.forkIn(scope)
  )

  return {
    catalog,
    load,
    loadMany,
    changes: Stream.fromPubSub(pubsub),
    subscribe: Stream.fromPubSub(pubsub, { scoped: true }),
    watch: (handler) =>
      Effect.acquireRelease(
        Effect.sync(() => void handlers.add(handler)),
        () => Effect.sync(() => void handlers.delete(handler))
      ),
    invalidateCatalog: cache.invalidate(CATALOG),
    catalogFetches: Effect.sync(() => fetches),
    broadcastInvalidation: backend.broadcastInvalidation
  } satisfies StoreManagerRegistryShape
})

export class StoreManagerRegistry extends Context.Tag("pantheon-persistence/StoreManagerRegistry")<
  StoreManagerRegistry,
  StoreManagerRegistryShape
>() {
  static readonly layer: Layer.Layer<StoreManagerRegistry, never, StoreBackend | CacheSettings> = Layer.scoped(StoreManagerRegistry, make)
}
