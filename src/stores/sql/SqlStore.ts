/**
 * The SQL store: sources and their entries on any `@effect/sql` client for PostgreSQL (PGlite
 * in-process, or a server through `@effect/sql-pg`). One service per database: it migrates the
 * layout at startup (`storage.ts`), registers and removes sources (`catalog.ts`), opens their
 * managers (`manager.ts`) and announces every change on `StoreEvents`. `SqlStore.backend` is the
 * `StoreBackend` over it.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Context, Effect, Either, Layer, Schema } from "effect"
import type { LoadingCacheStats } from "../../cache/LoadingCache.js"
import { type CatalogUnavailable, type InvalidSourceId, StoreUnavailable, type UnsupportedLayout } from "../../domain/errors.js"
import { SourceAdded, SourceChanged, SourceRemoved } from "../../domain/events.js"
import { Embedder } from "../../embedding/Embedder.js"
import { type OpenOptions, StoreBackend } from "../../services/StoreBackend.js"
import type { StoreManager } from "../../services/StoreManager.js"
import { StoreEvents } from "../../services/StoreEvents.js"
import { readCatalog, register, remove, type SqlSourceDescriptor } from "./catalog.js"
import { validateSourceId } from "./identifiers.js"
import { sqlManager } from "./manager.js"
import * as ResultCache from "./ResultCache.js"
import { RowNumber, rowNumber } from "./rows.js"
import type { ResultCacheOptions } from "./ResultCache.js"
import { entriesTable, migrate, type VectorMode } from "./storage.js"
import { estimateBytes, openWarm } from "./warm/warmManager.js"

export type { VectorMode } from "./storage.js"

export interface SqlStoreOptions {
  /** "auto" (default) uses pgvector when the extension exists or can be created. */
  readonly vectorMode?: "auto" | VectorMode
  /** Rows per insert statement (default 200). */
  readonly insertBatch?: number
  /** Query results kept per source until its data changes (default 16 MiB for 60 s); `false`: none. */
  readonly resultCache?: ResultCacheOptions | false
  /**
   * A warm manager whose source is estimated above this many bytes is read into memory in the
   * background, and answers from SQL until then (default 8 MiB: about 0.2 s of reading), so that
   * opening a large source never makes a compile wait.
   */
  readonly backgroundLoadBytes?: number
}

export interface SqlStoreShape {
  readonly vectorMode: VectorMode
  /** Dimensions of the vectors this store writes (its embedder's). */
  readonly dimensions: number
  /** The registered sources, oldest first. */
  readonly catalog: Effect.Effect<ReadonlyArray<SqlSourceDescriptor>, CatalogUnavailable>
  /** Registers a source (or updates its label, or brings a removed one back) with its storage. */
  readonly registerSource: (id: string, options?: { readonly label?: string }) => Effect.Effect<SqlSourceDescriptor, InvalidSourceId | StoreUnavailable>
  /** Removes a source from the catalog; its entries are kept (registering the id again restores them). */
  readonly removeSource: (id: string) => Effect.Effect<boolean, InvalidSourceId | StoreUnavailable>
  /** Opens a source's manager by id (one catalog row read): for writers such as ingest. */
  readonly open: (id: string) => Effect.Effect<StoreManager, InvalidSourceId | StoreUnavailable>
  /**
   * Opens the manager of a catalog descriptor, trusting it: the backend's `open`. Warm (its entries
   * read into memory) when it fits half of `warmBytes`, else served from SQL (no statement to open).
   */
  readonly openDescriptor: (descriptor: SqlSourceDescriptor, options?: OpenOptions) => Effect.Effect<StoreManager, StoreUnavailable>
  /** How many entries a source holds. */
  readonly countEntries: (id: string) => Effect.Effect<number, InvalidSourceId | StoreUnavailable>
  /** The query-result cache's counters (zeros when it is off). */
  readonly resultStats: Effect.Effect<LoadingCacheStats>
}

/** Detects pgvector: present, or creatable; otherwise exact search over `real[]`. */
const detectVectorMode = (sql: SqlClient.SqlClient) =>
  Effect.gen(function* () {
    const present = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'vector'`
    if ((present[0]?.n ?? 0) > 0) return "pgvector" as const
    const created = yield* Effect.either(sql`CREATE EXTENSION IF NOT EXISTS vector`)
    return Either.isRight(created) ? ("pgvector" as const) : ("array" as const)
  })

/** The largest share of the warm budget one source may take: the others keep room. */
const WARM_SHARE = 0.5

const noResults: LoadingCacheStats = { hits: 0, misses: 0, size: 0, loads: 0, loadFailures: 0, evictions: 0, expirations: 0, invalidations: 0, refreshes: 0, staleServed: 0, weight: 0, hitRate: 0, evictionPolicy: "w-tinylfu" }

export const make = (options: SqlStoreOptions = {}) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const embedder = yield* Embedder
    const events = yield* StoreEvents
    const dimensions = embedder.dimensions
    const vectorMode: VectorMode = options.vectorMode === undefined || options.vectorMode === "auto" ? yield* detectVectorMode(sql) : options.vectorMode
    yield* migrate(sql)
    const results = options.resultCache === false ? undefined : yield* ResultCache.make(options.resultCache)
    // The newest `seq` of each source this instance has heard of: warm managers catch up to it.
    const highWater = new Map<string, number>()
    yield* events.subscribe((event) =>
      Effect.sync(() => {
        if (event._tag === "DataWritten") highWater.set(event.id, Math.max(highWater.get(event.id) ?? 0, event.seq))
      })
    )
    const scope = yield* Effect.scope
    const context = {
      sql,
      embedder,
      events,
      results,
      scope,
      insertBatch: options.insertBatch ?? 200,
      backgroundLoadBytes: options.backgroundLoadBytes ?? 8 * 1024 * 1024,
      knownHighWater: (id: string) => highWater.get(id) ?? 0
    }

    const catalog = readCatalog(sql)

    const registerSource = Effect.fn("SqlStore.registerSource")(function* (rawId: string, opts: { readonly label?: string } = {}) {
      const id = yield* validateSourceId(rawId)
      const { descriptor, outcome } = yield* register(sql, id, opts.label ?? null, dimensions, vectorMode)
      if (outcome === "added") yield* events.publish(SourceAdded.make({ id, fingerprint: descriptor.fingerprint! }))
      if (outcome === "changed") yield* events.publish(SourceChanged.make({ id, fingerprint: descriptor.fingerprint! }))
      return descriptor
    })

    const removeSource = Effect.fn("SqlStore.removeSource")(function* (rawId: string) {
      const id = yield* validateSourceId(rawId)
      const removed = yield* remove(sql, id)
      if (removed) yield* events.publish(SourceRemoved.make({ id }))
      return removed
    })

    const openDescriptor = (source: SqlSourceDescriptor, opts: OpenOptions = { warmBytes: 0 }): Effect.Effect<StoreManager, StoreUnavailable> => {
      if (source.dimensions !== dimensions || source.vectorMode !== vectorMode) {
        return Effect.fail(
          new StoreUnavailable({
            id: source.id,
            reason: `its entries were embedded as ${source.vectorMode} with ${source.dimensions} dimensions, but this store uses ${vectorMode} with ${dimensions} (${embedder.model}): re-ingest it`
          })
        )
      }
      if (opts.warmBytes <= 0) return Effect.succeed(sqlManager(context, source))
      return Effect.flatMap(estimateBytes(context, source), (estimate) =>
        estimate.bytes <= opts.warmBytes * WARM_SHARE ? openWarm(context, source, estimate) : Effect.succeed(sqlManager(context, source))
      ).pipe(Effect.withSpan("SqlStore.open", { attributes: { source: source.id } }))
    }

    const open = Effect.fn("SqlStore.open")(function* (rawId: string) {
      const id = yield* validateSourceId(rawId)
      const descriptor = (yield* catalog.pipe(Effect.mapError((e) => new StoreUnavailable({ id, reason: e.reason, cause: e })))).find((d) => d.id === id)
      if (descriptor === undefined) return yield* new StoreUnavailable({ id, reason: "it is not registered" })
      return yield* openDescriptor(descriptor)
    })

    const countEntries = (rawId: string) =>
      Effect.gen(function* () {
        const id = yield* validateSourceId(rawId)
        const rows = yield* sql`SELECT storage FROM pantheon_sources WHERE id = ${id} AND NOT removed`.pipe(
          Effect.flatMap(Schema.decodeUnknown(Schema.Array(Schema.Struct({ storage: RowNumber })))),
          Effect.mapError(StoreUnavailable.failed(id, "reading its registration"))
        )
        if (rows[0] === undefined) return yield* new StoreUnavailable({ id, reason: "it is not registered" })
        const counted = yield* sql<{ n: number | string }>`SELECT count(*) AS n FROM ${sql(entriesTable(rows[0].storage))}`.pipe(
          Effect.mapError(StoreUnavailable.failed(id, "counting its entries"))
        )
        return rowNumber(counted[0]?.n ?? 0)
      })

    return {
      vectorMode,
      dimensions,
      catalog,
      registerSource,
      removeSource,
      open,
      openDescriptor,
      countEntries,
      resultStats: results === undefined ? Effect.succeed(noResults) : results.stats
    } satisfies SqlStoreShape
  })

export class SqlStore extends Context.Tag("pantheon-persistence/SqlStore")<SqlStore, SqlStoreShape>() {
  static readonly layer = (options: SqlStoreOptions = {}): Layer.Layer<SqlStore, SqlError | UnsupportedLayout, SqlClient.SqlClient | Embedder | StoreEvents> =>
    Layer.scoped(SqlStore, make(options))

  /** The `StoreBackend` of the store: its catalog, and managers opened from catalog descriptors. */
  static readonly backend: Layer.Layer<StoreBackend, never, SqlStore> = StoreBackend.layer(
    Effect.map(SqlStore, (store) => ({ catalog: store.catalog, open: store.openDescriptor }))
  )
}
