/**
 * The store manager of one SQL source, answering from the database: a light handle (the source's
 * descriptor and its statements) over the shared client, so dropping it never closes a connection.
 *
 * - `getMostRecent`: one statement on the `(ts, id)` index.
 * - `getMostRelevant`: the seeds are embedded (through the embedding cache) and ranked in one
 *   statement for all of them: the `limit` entries of distinct texts most similar to any seed
 *   (the largest dot product of unit vectors: cosine; 0 for a text with no words), to 6 decimals
 *   (float32 sums differ in the last digits), best first, ties by id. An exact scan, so a filtered
 *   or image query is as right as any other.
 * - `insert`: upsert by id, in one transaction that holds the source's catalog row, so that the
 *   source's writes commit in `seq` order; then a `DataWritten` event with the new high-water
 *   sequence.
 * - `where` is parsed by domain/filter.ts and becomes a condition of bound parameters
 *   (`filterSql.ts`), meaning what it means on the warm index and in the compile's re-check.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as Statement from "@effect/sql/Statement"
import { Effect, Either, MetricLabel, Schema } from "effect"
import { timestampMs } from "../../domain/compile.js"
import { errorReason, StoreQueryError } from "../../domain/errors.js"
import { type Filter, filterKey, isImageType, parseFilter } from "../../domain/filter.js"
import { DataWritten } from "../../domain/events.js"
import { NewEntry, type StoreEntry, type Where } from "../../domain/schemas.js"
import * as M from "../../metrics.js"
import type { EmbedderShape } from "../../embedding/Embedder.js"
import type { StoreManager } from "../../services/StoreManager.js"
import type { StoreEventsShape } from "../../services/StoreEvents.js"
import type { SqlSourceDescriptor } from "./catalog.js"
import { filterSql } from "./filterSql.js"
import type { ResultCacheShape } from "./ResultCache.js"
import { entriesTable } from "./storage.js"
import { vectorLiteral } from "./vectorText.js"

export interface SqlManagerContext {
  readonly sql: SqlClient.SqlClient
  readonly embedder: EmbedderShape
  readonly events: StoreEventsShape
  /** Query results kept per data version; none: every query reaches the database. */
  readonly results: ResultCacheShape | undefined
  /** Rows per insert statement. */
  readonly insertBatch: number
}

const SERVED = { warm: [MetricLabel.make("served", "warm")], sql: [MetricLabel.make("served", "sql")] } as const

/**
 * A query of a source, answered through its result cache (when it is on) and counted in
 * `pantheon_store_queries_total` by where it was served, when it is run (a result-cache hit is not a
 * query): the one path of the SQL and the warm manager.
 */
export const served = (
  context: SqlManagerContext,
  id: string,
  where: keyof typeof SERVED,
  key: string,
  run: Effect.Effect<ReadonlyArray<StoreEntry>, StoreQueryError>
): Effect.Effect<ReadonlyArray<StoreEntry>, StoreQueryError> => {
  const counted = Effect.zipRight(Effect.sync(() => M.storeQueries.unsafeUpdate(1, SERVED[where])), run)
  return context.results === undefined ? counted : context.results.query(id, key, counted)
}

const Numeric = Schema.Union(Schema.Number, Schema.NumberFromString, Schema.BigIntFromSelf.pipe(Schema.transform(Schema.Number, { decode: Number, encode: BigInt })))

const EntryRow = Schema.Struct({ id: Schema.String, text: Schema.String, ts: Numeric, metadata: Schema.Unknown })
const decodeRows = Schema.decodeUnknown(Schema.Array(EntryRow))
const toEntries = (rows: ReadonlyArray<typeof EntryRow.Type>): Array<StoreEntry> =>
  rows.map((r) => ({ id: r.id, text: r.text, timestamp: r.ts, metadata: r.metadata }))

/** What an entry is found by: an image by its caption when it has one, anything else by its text. */
export const searchText = (entry: { readonly text: string; readonly metadata: Readonly<Record<string, unknown>> }) => {
  const { type, caption } = entry.metadata
  return isImageType(type) && typeof caption === "string" && caption.trim() ? caption : entry.text
}

/** The key of a query's result: the same for the SQL and the warm manager, which answer alike; filters that parse alike share it. */
export const resultKey = {
  recent: (n: number, filter: Filter) => `recent\u0000${n}\u0000${filterKey(filter)}`,
  relevant: (n: number, filter: Filter, seeds: ReadonlyArray<string>) => `relevant\u0000${n}\u0000${filterKey(filter)}\u0000${JSON.stringify(seeds)}`
}

/** The distinct non-blank query texts, in order. */
export const seedsOf = (queries: ReadonlyArray<string>) => [...new Set(queries.filter((q) => typeof q === "string" && q.trim().length > 0))]

/** A limit as a whole number, at least 0. */
export const countOf = (limit: number) => Math.max(0, Math.floor(limit))

/** A filter, parsed; a bad one is the query's typed error, naming its path. */
export const validFilter = (id: string, operation: string, where: Where | undefined) =>
  Either.mapLeft(parseFilter(where), (e) => new StoreQueryError({ id, operation, reason: e.message, cause: e }))

export const sqlManager = (context: SqlManagerContext, descriptor: SqlSourceDescriptor): StoreManager => {
  const { sql, embedder, events } = context
  const id = descriptor.id
  const mode = descriptor.vectorMode
  const table = sql(entriesTable(descriptor.storage))
  const queryError = (operation: string) => (cause: unknown) => new StoreQueryError({ id, operation, reason: errorReason(cause), cause })

  const getMostRecent = (limit: number, where?: Where) =>
    Effect.flatMap(validFilter(id, "getMostRecent", where), (valid) => {
      const n = countOf(limit)
      return served(
        context,
        id,
        "sql",
        resultKey.recent(n, valid),
        sql`SELECT e.id, e.text, e.ts, e.metadata FROM ${table} e WHERE ${filterSql(sql, valid)} ORDER BY e.ts DESC, e.id COLLATE "C" DESC LIMIT ${n}`.pipe(
          Effect.flatMap(decodeRows),
          Effect.map(toEntries),
          Effect.mapError(queryError("getMostRecent"))
        )
      )
    }).pipe(Effect.withSpan("StoreManager.getMostRecent", { attributes: { source: id, served: "sql" }, captureStackTrace: false }))

  /** The best `n` distinct texts over all seeds, in one statement (the seeds' vectors parsed once). */
  const rankSql = (vectors: string, condition: Statement.Fragment, n: number) => {
    const cast = sql.literal(mode === "pgvector" ? "vector" : "real[]")
    const score =
      mode === "pgvector"
        ? sql`(SELECT max(-(e.embedding <#> q.v)) FROM q)`
        : sql`(SELECT max(s.dot) FROM q, LATERAL (SELECT sum(a::float8 * b::float8) AS dot FROM unnest(e.embedding, q.v) AS u(a, b)) s)`
    return sql`WITH q AS MATERIALIZED (SELECT v::${cast} AS v FROM jsonb_array_elements_text(${vectors}::jsonb) AS t(v)),
      best AS (
        SELECT DISTINCT ON (e.text) e.id, e.text, e.ts, e.metadata, round((${score})::numeric, 6) AS score
        FROM ${table} e
        WHERE e.embedding IS NOT NULL AND ${condition}
        ORDER BY e.text, score DESC, e.id COLLATE "C"
      )
      SELECT id, text, ts, metadata FROM best ORDER BY score DESC, id COLLATE "C" LIMIT ${n}`
  }

  const getMostRelevant = (queries: ReadonlyArray<string>, limit: number, where?: Where) =>
    Effect.gen(function* () {
      const seeds = seedsOf(queries)
      const n = countOf(limit)
      if (seeds.length === 0 || n === 0) return []
      const valid = yield* validFilter(id, "getMostRelevant", where)
      return yield* served(
        context,
        id,
        "sql",
        resultKey.relevant(n, valid, seeds),
        Effect.gen(function* () {
          const vectors = yield* embedder.embed(seeds).pipe(Effect.mapError(queryError("getMostRelevant")))
          const literals = vectors.map((v) => vectorLiteral(mode, v))
          const rows = yield* rankSql(JSON.stringify(literals), filterSql(sql, valid), n).pipe(
            Effect.flatMap(decodeRows),
            Effect.mapError(queryError("getMostRelevant"))
          )
          return toEntries(rows)
        })
      )
    }).pipe(Effect.withSpan("StoreManager.getMostRelevant", { attributes: { source: id, queries: queries.length, served: "sql" }, captureStackTrace: false }))

  const insert = (entries: ReadonlyArray<NewEntry>) =>
    Effect.gen(function* () {
      const decoded = yield* Schema.decodeUnknown(Schema.Array(NewEntry))(entries).pipe(
        Effect.mapError((e) => new StoreQueryError({ id, operation: "insert", reason: e.message, cause: e }))
      )
      const rows: Array<{ id: string; text: string; ts: number; metadata: Readonly<Record<string, unknown>> }> = []
      for (const [i, e] of decoded.entries()) {
        const ms = timestampMs(e.timestamp)
        if (ms === undefined) {
          return yield* new StoreQueryError({ id, operation: "insert", reason: `entry ${i} (${JSON.stringify(e.id)}) has an invalid timestamp` })
        }
        rows.push({ id: e.id, text: e.text, ts: ms, metadata: e.metadata })
      }
      const seq = yield* sql.withTransaction(
        Effect.gen(function* () {
          // Holding the source's row orders its writers: their rows commit in `seq` order.
          const held = yield* sql`SELECT storage FROM pantheon_sources WHERE id = ${id} AND NOT removed FOR UPDATE`
          if (held.length === 0) return yield* new StoreQueryError({ id, operation: "insert", reason: "the source is not registered (or was removed)" })
          let high = 0
          for (let start = 0; start < rows.length; start += context.insertBatch) {
            const chunk = rows.slice(start, start + context.insertBatch)
            const vectors = yield* embedder.embed(chunk.map(searchText)).pipe(Effect.mapError(queryError("insert")))
            const payload = yield* Effect.try({
              try: () => JSON.stringify(chunk.map((r, j) => ({ ...r, embedding: r.text.trim() ? vectorLiteral(mode, vectors[j]!) : null }))),
              catch: (e) => new StoreQueryError({ id, operation: "insert", reason: `an entry cannot be written as JSON: ${errorReason(e)} (metadata nested too deeply?)`, cause: e })
            })
            const cast = sql.literal(mode === "pgvector" ? "vector" : "real[]")
            const written = yield* sql<{ seq: number | string }>`INSERT INTO ${table} (id, text, ts, metadata, embedding)
                SELECT x.id, x.text, x.ts, coalesce(x.metadata, '{}'::jsonb), x.embedding::${cast}
                FROM jsonb_to_recordset(${payload}::jsonb) AS x(id text, text text, ts bigint, metadata jsonb, embedding text)
                ON CONFLICT (id) DO UPDATE SET text = excluded.text, ts = excluded.ts, metadata = excluded.metadata, embedding = excluded.embedding
                RETURNING seq`
            for (const row of written) high = Math.max(high, Number(row.seq))
          }
          return high
        })
      ).pipe(Effect.mapError((e) => (e instanceof StoreQueryError ? e : queryError("insert")(e))))
      yield* events.publish(DataWritten.make({ id, seq }))
    }).pipe(Effect.withSpan("StoreManager.insert", { attributes: { source: id, entries: entries.length }, captureStackTrace: false }))

  return { name: id, getMostRecent, getMostRelevant, insert }
}
