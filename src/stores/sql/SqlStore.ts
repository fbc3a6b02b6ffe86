/**
 * The SQL store: a `pantheon_sources` table (the catalog) and one entries table per source, on any
 * `@effect/sql` client for Postgres (PGlite in-process, or a server through `@effect/sql-pg`).
 *
 * Vectors: with pgvector, an `embedding vector(d)` column with an HNSW index (cosine); without it,
 * `embedding real[]` and exact cosine similarity computed in SQL. Vectors are unit length, so both
 * rank by the same cosine similarity.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Context, Duration, Effect, Either, Layer, Option, PubSub, Schema, type Scope, Stream } from "effect"
import { timestampMs } from "../../domain/compile.js"
import { CatalogUnavailable, errorReason, InvalidSourceId, StoreQueryError, StoreUnavailable } from "../../domain/errors.js"
import { type CatalogChange, NewEntry, type StoreDescriptor, type StoreEntry, type Where } from "../../domain/schemas.js"
import { Embedder } from "../../services/Embedder.js"
import { StoreBackend } from "../../services/StoreBackend.js"
import type { StoreManager } from "../../services/StoreManager.js"
import { entriesTable, validateSourceId, validateWhere } from "./identifiers.js"
import { ChangeBus } from "./ChangeBus.js"
import { ResultCache } from "./ResultCache.js"

export type VectorMode = "pgvector" | "array"

export interface SqlStoreOptions {
  /** "auto" (default) uses pgvector when the extension exists or can be created. */
  readonly vectorMode?: "auto" | VectorMode
  /** Rows per insert statement (default 200). */
  readonly insertBatch?: number
  /**
   * Query results kept per source until its data changes (default 2,048 result sets for 60 s);
   * `false` sends every query to the database.
   */
  readonly resultCache?: { readonly capacity?: number; readonly ttl?: Duration.DurationInput } | false
}

export interface SqlStoreShape {
  readonly vectorMode: VectorMode
  /** The registered sources, oldest first. */
  readonly catalog: Effect.Effect<ReadonlyArray<StoreDescriptor>, CatalogUnavailable>
  /** Registers a source (or updates its label) and creates its storage. */
  readonly registerSource: (id: string, options?: { readonly label?: string }) => Effect.Effect<StoreDescriptor, InvalidSourceId | StoreUnavailable>
  /** Removes a source from the catalog; its entries table is kept (registering it again restores them). */
  readonly removeSource: (id: string) => Effect.Effect<boolean, InvalidSourceId | StoreUnavailable>
  /** Opens a source's manager: checks its storage and compiles its statements. */
  readonly open: (id: string) => Effect.Effect<StoreManager, InvalidSourceId | StoreUnavailable>
  /** Catalog changes made through this instance (and, on a server, through every instance). */
  readonly changes: Stream.Stream<CatalogChange>
  /** The same changes, subscribed now: nothing published after this returns is missed. */
  readonly subscribe: Effect.Effect<Stream.Stream<CatalogChange>, never, Scope.Scope>
  /** How many entries a source holds. */
  readonly countEntries: (id: string) => Effect.Effect<number, InvalidSourceId | StoreUnavailable>
  /** Retires the cached query results of a source (all sources when `null`): its data changed elsewhere. */
  readonly dataChanged: (id: string | null) => Effect.Effect<void>
  /** Tells the other instances on this database to drop a manager (`null`: all). */
  readonly broadcastInvalidation: (id: string | null) => Effect.Effect<void>
  readonly resultStats: Effect.Effect<{ readonly hits: number; readonly misses: number; readonly size: number }>
}

export class SqlStore extends Context.Tag("pantheon-persistence/SqlStore")<SqlStore, SqlStoreShape>() {}

const SourceRow = Schema.Struct({
  id: Schema.String,
  label: Schema.NullOr(Schema.String),
  version: Schema.Number,
  dimensions: Schema.Number,
  vector_mode: Schema.String
})

const EntryRow = Schema.Struct({
  id: Schema.String,
  text: Schema.String,
  ts: Schema.Union(Schema.Number, Schema.NumberFromString, Schema.BigIntFromSelf.pipe(Schema.transform(Schema.Number, { decode: Number, encode: BigInt }))),
  metadata: Schema.Unknown,
  score: Schema.optional(Schema.Union(Schema.Number, Schema.NumberFromString, Schema.Null)),
  ord: Schema.optional(Schema.Union(Schema.Number, Schema.NumberFromString, Schema.BigIntFromSelf))
})
type ScoredRow = typeof EntryRow.Type
const decodeRows = Schema.decodeUnknown(Schema.Array(EntryRow))
const toEntries = (rows: ReadonlyArray<ScoredRow>): Array<StoreEntry> =>
  rows.map((r) => ({ id: r.id, text: r.text, timestamp: r.ts, metadata: r.metadata }))

/** The best score of each text across the seeds' rows, best first (ties by id), at most `n`. */
export const bestPerText = (rows: ReadonlyArray<ScoredRow>, n: number): Array<ScoredRow> => {
  const score = (r: ScoredRow) => (r.score === null || r.score === undefined ? -Infinity : Number(r.score))
  const best = new Map<string, ScoredRow>()
  for (const row of rows) {
    const current = best.get(row.text)
    if (current === undefined || score(row) > score(current) || (score(row) === score(current) && row.id < current.id)) best.set(row.text, row)
  }
  return [...best.values()].sort((a, b) => score(b) - score(a) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).slice(0, n)
}

/** What an entry is found by: an image by its caption when it has one, anything else by its text. */
const searchText = (entry: { readonly text: string; readonly metadata: Readonly<Record<string, unknown>> }) => {
  const { type, caption } = entry.metadata
  return typeof type === "string" && type.toLowerCase() === "image" && typeof caption === "string" && caption.trim() ? caption : entry.text
}

/** A vector as SQL text, 7 significant digits (a float32's precision); memoised per vector object. */
const literals = { pgvector: new WeakMap<Float32Array, string>(), array: new WeakMap<Float32Array, string>() }
const vectorLiteral = (mode: VectorMode, v: Float32Array) => {
  let text = literals[mode].get(v)
  if (text === undefined) {
    const digits = Array.from(v, (x) => (x === 0 ? "0" : x.toPrecision(7))).join(",")
    text = mode === "pgvector" ? `[${digits}]` : `{${digits}}`
    literals[mode].set(v, text)
  }
  return text
}

/** Detects pgvector: present, or creatable; otherwise exact search over `real[]`. */
const detectVectorMode = (sql: SqlClient.SqlClient) =>
  Effect.gen(function* () {
    const present = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'vector'`
    if ((present[0]?.n ?? 0) > 0) return "pgvector" as const
    const created = yield* Effect.either(sql`CREATE EXTENSION IF NOT EXISTS vector`)
    return Either.isRight(created) ? ("pgvector" as const) : ("array" as const)
  })

export const make = (options: SqlStoreOptions = {}) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const embedder = yield* Embedder
    const dims = embedder.dimensions
    const vectorMode: VectorMode = options.vectorMode === undefined || options.vectorMode === "auto" ? yield* detectVectorMode(sql) : options.vectorMode
    const batch = options.insertBatch ?? 200
    const results = new ResultCache<ReadonlyArray<ScoredRow>>(
      options.resultCache === false ? 0 : (options.resultCache?.capacity ?? 2048),
      options.resultCache === false ? 0 : Duration.toMillis(Duration.decode(options.resultCache?.ttl ?? "60 seconds"))
    )
    /** Serves `key` from the result cache, or runs `query` and keeps what it returns. */
    const cachedQuery = <E>(id: string, key: string, query: Effect.Effect<ReadonlyArray<ScoredRow>, E>) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const hit = results.get(id, key, now)
        if (hit !== undefined) return Effect.succeed(hit)
        const version = results.version(id)
        return Effect.tap(query, (rows) => Effect.sync(() => results.set(id, key, rows, now, version)))
      })
    const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<CatalogChange>(), PubSub.shutdown)
    // Other instances on the same database (PostgreSQL); none for PGlite.
    const bus = Option.getOrUndefined(yield* Effect.serviceOption(ChangeBus))
    const tell = (message: Parameters<NonNullable<typeof bus>["publish"]>[0]) => (bus ? bus.publish(message) : Effect.void)
    /** A catalog change made here: to this instance's registry and to the others. */
    const announce = (change: CatalogChange) => Effect.zipRight(PubSub.publish(pubsub, change), tell({ kind: "catalog", change }))

    yield* sql`CREATE TABLE IF NOT EXISTS pantheon_sources (
      id text PRIMARY KEY,
      label text,
      version integer NOT NULL DEFAULT 1,
      dimensions integer NOT NULL,
      vector_mode text NOT NULL,
      created_at bigint NOT NULL
    )`
    if (vectorMode === "pgvector") {
      // pgvector ≥ 0.8: keep scanning the HNSW index until a filtered query has its rows.
      yield* Effect.ignore(sql`SET hnsw.iterative_scan = strict_order`)
    }

    const unavailable = (id: string, what: string) => (cause: SqlError | unknown) =>
      new StoreUnavailable({ id, reason: `${what}: ${errorReason(cause)}`, cause })

    /** Creates the source's table and indexes when missing; cheap when they exist, but a round trip each. */
    const ensureStorage = (id: string) => {
      const table = entriesTable(id)
      const column = vectorMode === "pgvector" ? sql.literal(`vector(${dims})`) : sql.literal("real[]")
      return Effect.gen(function* () {
        yield* sql`CREATE TABLE IF NOT EXISTS ${sql(table)} (
          id text PRIMARY KEY,
          text text NOT NULL,
          ts bigint NOT NULL,
          metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
          embedding ${column}
        )`
        yield* sql`CREATE INDEX IF NOT EXISTS ${sql(`${table}_ts`)} ON ${sql(table)} (ts DESC)`
        yield* sql`CREATE INDEX IF NOT EXISTS ${sql(`${table}_meta`)} ON ${sql(table)} USING gin (metadata jsonb_path_ops)`
        if (vectorMode === "pgvector") {
          yield* sql`CREATE INDEX IF NOT EXISTS ${sql(`${table}_hnsw`)} ON ${sql(table)} USING hnsw (embedding vector_cosine_ops)`
        }
      }).pipe(Effect.mapError(unavailable(id, "creating its storage failed")))
    }

    const catalog = sql`SELECT id, label, version, dimensions, vector_mode FROM pantheon_sources ORDER BY created_at, id`.pipe(
      Effect.flatMap(Schema.decodeUnknown(Schema.Array(SourceRow))),
      Effect.map((rows) => rows.map((r): StoreDescriptor => ({ id: r.id, ...(r.label === null ? {} : { label: r.label }), fingerprint: String(r.version) }))),
      Effect.mapError((cause) => new CatalogUnavailable({ reason: `reading pantheon_sources failed: ${errorReason(cause)}`, cause })),
      Effect.withSpan("SqlStore.catalog")
    )

    const registerSource = Effect.fn("SqlStore.registerSource")(function* (rawId: string, opts: { readonly label?: string } = {}) {
      const id = yield* validateSourceId(rawId)
      yield* ensureStorage(id)
      const label = opts.label ?? null
      const rows = yield* sql<{ version: number; inserted: boolean }>`
        INSERT INTO pantheon_sources (id, label, dimensions, vector_mode, created_at)
        VALUES (${id}, ${label}, ${dims}, ${vectorMode}, ${Date.now()})
        ON CONFLICT (id) DO UPDATE SET label = excluded.label, version = pantheon_sources.version + 1
          WHERE pantheon_sources.label IS DISTINCT FROM excluded.label
        RETURNING version, (xmax = 0) AS inserted`.pipe(Effect.mapError(unavailable(id, "registering it failed")))
      const descriptor: StoreDescriptor = { id, ...(label === null ? {} : { label }), fingerprint: String(rows[0]?.version ?? 1) }
      if (rows.length > 0) yield* announce(rows[0]!.inserted ? { _tag: "Added", id, descriptor } : { _tag: "Changed", id, descriptor })
      return descriptor
    })

    const removeSource = Effect.fn("SqlStore.removeSource")(function* (rawId: string) {
      const id = yield* validateSourceId(rawId)
      const rows = yield* sql`DELETE FROM pantheon_sources WHERE id = ${id} RETURNING id`.pipe(Effect.mapError(unavailable(id, "removing it failed")))
      results.bump(id)
      if (rows.length > 0) yield* announce({ _tag: "Removed", id })
      return rows.length > 0
    })

    const open = Effect.fn("SqlStore.open")(function* (rawId: string) {
      const id = yield* validateSourceId(rawId)
      const registered = yield* sql`SELECT id, label, version, dimensions, vector_mode FROM pantheon_sources WHERE id = ${id}`.pipe(
        Effect.flatMap(Schema.decodeUnknown(Schema.Array(SourceRow))),
        Effect.mapError(unavailable(id, "reading its registration failed"))
      )
      const row = registered[0]
      if (row === undefined) return yield* new StoreUnavailable({ id, reason: "it is not registered" })
      if (row.dimensions !== dims || row.vector_mode !== vectorMode) {
        return yield* new StoreUnavailable({
          id,
          reason: `its entries were embedded as ${row.vector_mode} with ${row.dimensions} dimensions, but this store uses ${vectorMode} with ${dims} (${embedder.model}): re-ingest it`
        })
      }
      yield* ensureStorage(id)
      return managerFor(id)
    })

    const managerFor = (id: string): StoreManager => {
      const table = sql(entriesTable(id))
      const queryError = (operation: string) => (cause: unknown) => new StoreQueryError({ id, operation, reason: errorReason(cause), cause })
      const filterOf = (operation: string, where: Where | undefined) =>
        Either.match(validateWhere(where), {
          onLeft: (e) => Effect.fail(new StoreQueryError({ id, operation, reason: e.message, cause: e })),
          onRight: (w) => Effect.succeed(JSON.stringify(w))
        })

      const getMostRecent = (limit: number, where?: Where) =>
        Effect.flatMap(filterOf("getMostRecent", where), (filter) => {
          const n = Math.max(0, Math.floor(limit))
          return cachedQuery(
            id,
            `recent\u0000${n}\u0000${filter}`,
            sql`SELECT id, text, ts, metadata FROM ${table}
                WHERE metadata @> ${filter}::jsonb
                ORDER BY ts DESC, id DESC LIMIT ${n}`.pipe(Effect.flatMap(decodeRows), Effect.mapError(queryError("getMostRecent")))
          )
        }).pipe(Effect.map(toEntries), Effect.withSpan("StoreManager.getMostRecent", { attributes: { source: id } }))

      // The nearest `limit` rows of each query vector, with their scores; vectors parsed once (MATERIALIZED).
      const nearestSql = (vectors: string, filter: string, limit: number) => {
        const nearest =
          vectorMode === "pgvector"
            ? sql`SELECT e.id, e.text, e.ts, e.metadata, 1 - (e.embedding <=> q.v) AS score
                  FROM ${table} e
                  WHERE e.embedding IS NOT NULL AND e.metadata @> ${filter}::jsonb
                  ORDER BY e.embedding <=> q.v
                  LIMIT ${limit}`
            : sql`SELECT e.id, e.text, e.ts, e.metadata, s.score
                  FROM ${table} e, LATERAL (SELECT sum(a::float8 * b::float8) AS score FROM unnest(e.embedding, q.v) AS u(a, b)) s
                  WHERE e.embedding IS NOT NULL AND e.metadata @> ${filter}::jsonb
                  ORDER BY s.score DESC NULLS LAST
                  LIMIT ${limit}`
        const cast = sql.literal(vectorMode === "pgvector" ? "vector" : "real[]")
        return sql`WITH q AS MATERIALIZED (SELECT ord, v::${cast} AS v FROM jsonb_array_elements_text(${vectors}::jsonb) WITH ORDINALITY AS t(v, ord))
               SELECT q.ord, r.id, r.text, r.ts, r.metadata, r.score FROM q CROSS JOIN LATERAL (${nearest}) r`
      }

      /** Each seed's nearest rows: from the result cache, the others in one query. */
      const nearestPerSeed = (seeds: ReadonlyArray<string>, filter: string, n: number) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const version = results.version(id)
          const key = (seed: string) => `near\u0000${n}\u0000${filter}\u0000${seed}`
          const found = seeds.map((seed) => results.get(id, key(seed), now))
          const missing = seeds.filter((_, i) => found[i] === undefined)
          if (missing.length > 0) {
            const vectors = yield* embedder.embed(missing).pipe(Effect.mapError(queryError("getMostRelevant")))
            const literal = JSON.stringify(vectors.map((v) => vectorLiteral(vectorMode, v)))
            const rows = yield* nearestSql(literal, filter, n).pipe(Effect.flatMap(decodeRows), Effect.mapError(queryError("getMostRelevant")))
            const bySeed = missing.map((): Array<ScoredRow> => [])
            for (const row of rows) bySeed[Number(row.ord) - 1]!.push(row)
            missing.forEach((seed, j) => results.set(id, key(seed), bySeed[j]!, now, version))
            let j = 0
            for (let i = 0; i < found.length; i++) if (found[i] === undefined) found[i] = bySeed[j++]
          }
          return found as Array<ReadonlyArray<ScoredRow>>
        })

      const getMostRelevant = (queries: ReadonlyArray<string>, limit: number, where?: Where) =>
        Effect.gen(function* () {
          const seeds = [...new Set(queries.filter((q) => typeof q === "string" && q.trim().length > 0))]
          const n = Math.max(0, Math.floor(limit))
          if (seeds.length === 0 || n === 0) return []
          const filter = yield* filterOf("getMostRelevant", where)
          return toEntries(bestPerText((yield* nearestPerSeed(seeds, filter, n)).flat(), n))
        }).pipe(Effect.withSpan("StoreManager.getMostRelevant", { attributes: { source: id, queries: queries.length } }))

      const insert = (entries: ReadonlyArray<NewEntry>) =>
        Effect.gen(function* () {
          const decoded = yield* Schema.decodeUnknown(Schema.Array(NewEntry))(entries).pipe(
            Effect.mapError((e) => new StoreQueryError({ id, operation: "insert", reason: e.message, cause: e }))
          )
          const rows = []
          for (const [i, e] of decoded.entries()) {
            const ms = timestampMs(e.timestamp)
            if (ms === undefined) {
              return yield* new StoreQueryError({ id, operation: "insert", reason: `entry ${i} (${JSON.stringify(e.id)}) has an invalid timestamp` })
            }
            rows.push({ id: e.id, text: e.text, ts: ms, metadata: e.metadata })
          }
          for (let start = 0; start < rows.length; start += batch) {
            const chunk = rows.slice(start, start + batch)
            const vectors = yield* embedder.embed(chunk.map(searchText)).pipe(Effect.mapError(queryError("insert")))
            const payload = JSON.stringify(chunk.map((r, j) => ({ ...r, embedding: r.text.trim() ? vectorLiteral(vectorMode, vectors[j]!) : null })))
            const cast = sql.literal(vectorMode === "pgvector" ? "vector" : "real[]")
            yield* sql`INSERT INTO ${table} (id, text, ts, metadata, embedding)
                SELECT x.id, x.text, x.ts, coalesce(x.metadata, '{}'::jsonb), x.embedding::${cast}
                FROM jsonb_to_recordset(${payload}::jsonb) AS x(id text, text text, ts bigint, metadata jsonb, embedding text)
                ON CONFLICT (id) DO UPDATE SET text = excluded.text, ts = excluded.ts, metadata = excluded.metadata, embedding = excluded.embedding`.pipe(
              Effect.mapError(queryError("insert"))
            )
          }
        }).pipe(
          // Cached results of this source are retired, here and on the other instances, whether or not the write completed.
          Effect.ensuring(Effect.zipRight(Effect.sync(() => results.bump(id)), tell({ kind: "data", id }))),
          Effect.withSpan("StoreManager.insert", { attributes: { source: id, entries: entries.length } })
        )

      return { name: id, getMostRecent, getMostRelevant, insert }
    }

    // What the other instances say.
    if (bus) {
      yield* bus.messages.pipe(
        Stream.runForEach((message) => {
          switch (message.kind) {
            case "data":
              return Effect.sync(() => results.bump(message.id))
            case "catalog":
              return Effect.zipRight(
                Effect.sync(() => "id" in message.change && message.change.id !== null && results.bump(message.change.id)),
                PubSub.publish(pubsub, message.change)
              )
            case "invalidate":
              return PubSub.publish(pubsub, { _tag: "Invalidated", id: message.id })
            case "resync":
              return Effect.zipRight(Effect.sync(() => results.bumpAll()), PubSub.publish(pubsub, { _tag: "Resync" }))
          }
        }),
        Effect.forkScoped
      )
    }

    return {
      vectorMode,
      catalog,
      registerSource,
      removeSource,
      open,
      changes: Stream.fromPubSub(pubsub),
      subscribe: Stream.fromPubSub(pubsub, { scoped: true }),
      countEntries: (rawId: string) =>
        Effect.flatMap(validateSourceId(rawId), (id) =>
          sql<{ n: number | string }>`SELECT count(*) AS n FROM ${sql(entriesTable(id))}`.pipe(
            Effect.map((rows) => Number(rows[0]?.n ?? 0)),
            Effect.mapError(unavailable(id, "counting its entries failed"))
          )
        ),
      dataChanged: (id: string | null) => Effect.sync(() => (id === null ? results.bumpAll() : results.bump(id))),
      broadcastInvalidation: (id: string | null) => tell({ kind: "invalidate", id }),
      resultStats: Effect.sync(() => ({ hits: results.hits, misses: results.misses, size: results.size }))
    } satisfies SqlStoreShape
  })

export const layer = (options: SqlStoreOptions = {}): Layer.Layer<SqlStore, SqlError, SqlClient.SqlClient | Embedder> =>
  Layer.scoped(SqlStore, make(options))

/** The `StoreBackend` of a `SqlStore`: its catalog, its managers and its changes. */
export const backendLayer: Layer.Layer<StoreBackend, never, SqlStore> = Layer.effect(
  StoreBackend,
  Effect.map(SqlStore, (store) => ({
    catalog: store.catalog,
    open: (descriptor: StoreDescriptor) => store.open(descriptor.id),
    changes: store.changes,
    broadcastInvalidation: store.broadcastInvalidation
  }))
)
