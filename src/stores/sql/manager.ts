/**
 * The store manager of one SQL source, answering from the database: a light handle (the source's
 * descriptor and its statements) over the shared client, so dropping it never closes a connection.
 *
 * - `getMostRecent`: one statement on the `(ts, id)` index.
 * - `findRelevant` (and `getMostRelevant`, all its texts the question): hybrid relevance in one
 *   statement (src/relevance/scoring.ts): BM25 over the `lexemes` tsvector (the analyzer's terms,
 *   found through its GIN index), fused with the vectors' cosine for the nearest entries, spread to
 *   each entry's neighbours in time by a window; the `limit` entries of distinct texts that pass
 *   the filter, best first (to 6 decimals), ties by id. The same answer as a warm manager's.
 * - `insert`: upsert by id (with the vector and the analyzer's terms of each entry), in one transaction that holds the source's catalog row, so that the
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
import { type Filter, filterKey, parseFilter } from "../../domain/filter.js"
import { DataWritten } from "../../domain/events.js"
import { NewEntry, type StoreEntry, type Where } from "../../domain/schemas.js"
import { lexicalColumns, searchText, terms } from "../../relevance/analyzer.js"
import { B, CONTEXT_WEIGHTS, K1, VECTOR_DEPTH, VECTOR_WEIGHT } from "../../relevance/scoring.js"
import * as M from "../../metrics.js"
import type { EmbedderShape } from "../../embedding/Embedder.js"
import type { RelevanceQuery, StoreManager } from "../../services/StoreManager.js"
import type { StoreEventsShape } from "../../services/StoreEvents.js"
import type { SqlSourceDescriptor } from "./catalog.js"
import { filterSql } from "./filterSql.js"
import { RowNumber, rowNumber } from "./rows.js"
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

const EntryRow = Schema.Struct({ id: Schema.String, text: Schema.String, ts: RowNumber, metadata: Schema.Unknown })
const decodeRows = Schema.decodeUnknown(Schema.Array(EntryRow))
const toEntries = (rows: ReadonlyArray<typeof EntryRow.Type>): Array<StoreEntry> =>
  rows.map((r) => ({ id: r.id, text: r.text, timestamp: r.ts, metadata: r.metadata }))

/** The key of a query's result: the same for the SQL and the warm manager, which answer alike; filters that parse alike share it. */
export const resultKey = {
  recent: (n: number, filter: Filter) => `recent\u0000${n}\u0000${filterKey(filter)}`,
  relevant: (n: number, filter: Filter, question: ReadonlyArray<string>, exclude: ReadonlyArray<string>) =>
    `relevant\u0000${n}\u0000${filterKey(filter)}\u0000${JSON.stringify(question)}\u0000${JSON.stringify(exclude)}`
}

/** The distinct non-blank query texts, in order. */
export const seedsOf = (queries: ReadonlyArray<string>) => [...new Set(queries.filter((q) => typeof q === "string" && q.trim().length > 0))]

/** A relevance query's texts (distinct, non-blank), its terms (distinct, in order) and its excluded ids, as both paths read them. */
export const questionOf = (query: RelevanceQuery) => {
  const texts = seedsOf(query.question)
  return { texts, terms: [...new Set(texts.flatMap(terms))], exclude: [...new Set(query.exclude ?? [])].sort() }
}

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
  const queryError = (operation: string) => StoreQueryError.failed(id, operation)

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

  /**
   * Hybrid relevance in one statement (src/relevance/scoring.ts has the formula, WarmIndex.search
   * the same in memory): statistics and IDF over the searchable rows, BM25 of the rows the GIN index
   * finds, the cosine of the `VECTOR_DEPTH` nearest, the base score spread by a window over time.
   */
  const rankSql = (vectors: string, question: ReturnType<typeof questionOf>, condition: Statement.Fragment, n: number) => {
    const cast = sql.literal(mode === "pgvector" ? "vector" : "real[]")
    const cosine =
      mode === "pgvector"
        ? sql`(SELECT max(-(e.embedding <#> q.v)) FROM q)`
        : sql`(SELECT max(s.dot) FROM q, LATERAL (SELECT sum(a::float8 * b::float8) AS dot FROM unnest(e.embedding, q.v) AS u(a, b)) s)`
    // The formula's constants are code, not input: written into the statement (a bound one would be typed by its context, as an integer).
    const [k1, b, w1, w2, weight] = [K1, B, CONTEXT_WEIGHTS[0]!, CONTEXT_WEIGHTS[1]!, VECTOR_WEIGHT].map((x) => sql.literal(`${x}::float8`))
    const tsquery = question.terms.map((t) => `'${t}'`).join(" | ")
    const lexical =
      question.terms.length === 0
        ? sql`SELECT NULL::text AS id, 0::float8 AS s WHERE false`
        : sql`SELECT e.id, sum(df.idf * (f.tf * (${k1} + 1)) / (f.tf + ${k1} * (1 - ${b} + ${b} * e.dl / greatest(docs.avgdl, 1e-9)))) AS s
            FROM ${table} e CROSS JOIN docs
            CROSS JOIN LATERAL unnest(e.lexemes) AS u(lexeme, positions, weights)
            JOIN df ON df.term = u.lexeme
            CROSS JOIN LATERAL (SELECT coalesce(array_length(u.positions, 1), 1)::float8 AS tf) f
            WHERE e.lexemes @@ ${tsquery}::tsquery
            GROUP BY e.id`
    return sql`WITH q AS MATERIALIZED (SELECT v::${cast} AS v FROM jsonb_array_elements_text(${vectors}::jsonb) AS t(v)),
      docs AS MATERIALIZED (SELECT count(*)::float8 AS n, coalesce(avg(e.dl), 0)::float8 AS avgdl FROM ${table} e WHERE e.lexemes IS NOT NULL),
      df AS MATERIALIZED (
        SELECT t.term, ln(1 + (docs.n - c.n + 0.5) / (c.n + 0.5)) AS idf
        FROM unnest(${question.terms}::text[]) AS t(term) CROSS JOIN docs
        CROSS JOIN LATERAL (SELECT count(*)::float8 AS n FROM ${table} e WHERE e.lexemes @@ quote_literal(t.term)::tsquery) c
      ),
      lex AS MATERIALIZED (${lexical}),
      best_lex AS MATERIALIZED (SELECT max(s) AS m FROM lex),
      vec AS MATERIALIZED (
        SELECT id, s FROM (SELECT e.id, round((${cosine})::numeric, 6)::float8 AS s FROM ${table} e WHERE e.lexemes IS NOT NULL AND e.embedding IS NOT NULL) v
        ORDER BY s DESC, id COLLATE "C" LIMIT ${sql.literal(String(VECTOR_DEPTH))}
      ),
      base AS (
        SELECT e.id, e.text, e.ts, e.metadata,
          coalesce(lex.s / nullif(best_lex.m, 0), 0) + ${weight} * greatest(coalesce(vec.s, 0), 0) AS b
        FROM ${table} e CROSS JOIN best_lex LEFT JOIN lex ON lex.id = e.id LEFT JOIN vec ON vec.id = e.id
        WHERE e.lexemes IS NOT NULL
      ),
      scored AS (
        SELECT id, text, ts, metadata,
          b + ${w1} * (coalesce(lag(b, 1) OVER w, 0) + coalesce(lead(b, 1) OVER w, 0))
            + ${w2} * (coalesce(lag(b, 2) OVER w, 0) + coalesce(lead(b, 2) OVER w, 0)) AS score
        FROM base WINDOW w AS (ORDER BY ts, id COLLATE "C")
      ),
      best AS (
        SELECT DISTINCT ON (e.text) e.id, e.text, e.ts, e.metadata, round(e.score::numeric, 6) AS score
        FROM scored e
        WHERE ${condition} AND NOT (e.id = ANY(${question.exclude}::text[]))
        ORDER BY e.text, score DESC, e.id COLLATE "C"
      )
      SELECT id, text, ts, metadata FROM best WHERE score > 0 ORDER BY score DESC, id COLLATE "C" LIMIT ${n}`
  }

  const findRelevant = (query: RelevanceQuery) =>
    Effect.gen(function* () {
      const question = questionOf(query)
      const n = countOf(query.limit)
      if (question.texts.length === 0 || n === 0) return []
      const valid = yield* validFilter(id, "getMostRelevant", query.where)
      return yield* served(
        context,
        id,
        "sql",
        resultKey.relevant(n, valid, question.texts, question.exclude),
        Effect.gen(function* () {
          const vectors = yield* embedder.embed(question.texts).pipe(Effect.mapError(queryError("getMostRelevant")))
          const literals = vectors.map((v) => vectorLiteral(mode, v))
          const rows = yield* rankSql(JSON.stringify(literals), question, filterSql(sql, valid), n).pipe(
            Effect.flatMap(decodeRows),
            Effect.mapError(queryError("getMostRelevant"))
          )
          return toEntries(rows)
        })
      )
    }).pipe(Effect.withSpan("StoreManager.findRelevant", { attributes: { source: id, texts: query.question.length, served: "sql" }, captureStackTrace: false }))

  const getMostRelevant = (queries: ReadonlyArray<string>, limit: number, where?: Where) => findRelevant({ question: queries, limit, where })

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
              try: () => JSON.stringify(chunk.map((r, j) => ({ ...r, embedding: r.text.trim() ? vectorLiteral(mode, vectors[j]!) : null, ...lexicalColumns(r) }))),
              catch: (e) => new StoreQueryError({ id, operation: "insert", reason: `an entry cannot be written as JSON: ${errorReason(e)} (metadata nested too deeply?)`, cause: e })
            })
            const cast = sql.literal(mode === "pgvector" ? "vector" : "real[]")
            const written = yield* sql<{ seq: number | string }>`INSERT INTO ${table} (id, text, ts, metadata, embedding, lexemes, dl)
                SELECT x.id, x.text, x.ts, coalesce(x.metadata, '{}'::jsonb), x.embedding::${cast}, x.lexemes::tsvector, x.dl
                FROM jsonb_to_recordset(${payload}::jsonb) AS x(id text, text text, ts bigint, metadata jsonb, embedding text, lexemes text, dl integer)
                ON CONFLICT (id) DO UPDATE SET text = excluded.text, ts = excluded.ts, metadata = excluded.metadata, embedding = excluded.embedding,
                  lexemes = excluded.lexemes, dl = excluded.dl
                RETURNING seq`
            for (const row of written) high = Math.max(high, rowNumber(row.seq))
          }
          return high
        })
      ).pipe(Effect.mapError((e) => (e instanceof StoreQueryError ? e : queryError("insert")(e))))
      yield* events.publish(DataWritten.make({ id, seq }))
    }).pipe(Effect.withSpan("StoreManager.insert", { attributes: { source: id, entries: entries.length }, captureStackTrace: false }))

  return { name: id, getMostRecent, getMostRelevant, findRelevant, insert }
}
