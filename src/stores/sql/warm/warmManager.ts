/**
 * A warm manager: the store manager of a SQL source that holds the source's entries and vectors in
 * memory (`WarmIndex`) and answers from there; the database stays the durable store and the source
 * of truth.
 *
 * - Opening reads the source once, in `seq` order, a page of rows a statement, indexed in short
 *   slices between turns of the event loop (a large source is read in the background for real).
 * - Kept current without reloading: writes through this library publish `DataWritten` with the
 *   source's new high-water `seq` (here and, through the events, on every instance); before its next
 *   answer the manager reads only the rows past its own high water. A write through this manager
 *   reads its rows back at once. The cache's reload after `ttl` (`refresh`) asks the database for
 *   the source's highest `seq` (one indexed statement) and catches up if anything was written
 *   behind the library's back.
 * - When that catch-up read fails (an outage), it answers from what it holds, counted in
 *   `pantheon_cache_stale_served_total{cache="warm"}` and logged once, and catches up in the
 *   background once the database answers again.
 * - It weighs what it holds (`weight`), which the manager cache bounds.
 */
import { Effect, Either, Fiber, Metric, type Scope } from "effect"
import { eventLoopTurn, inTurnOfItsOwn } from "../../../concurrency.js"
import { cacheStaleServed } from "../../../metrics.js"
import { DamagedEntry, StoreQueryError, StoreUnavailable } from "../../../domain/errors.js"
import type { StoreEntry, Where } from "../../../domain/schemas.js"
import { documentText, terms } from "../../../relevance/analyzer.js"
import type { RelevanceQuery, StoreManager } from "../../../services/StoreManager.js"
import type { SqlSourceDescriptor } from "../catalog.js"
import { countOf, questionOf, resultKey, served, type SqlManagerContext, sqlManager, validFilter } from "../manager.js"
import { entriesTable } from "../storage.js"
import { rowNumber } from "../rows.js"
import { parseVector } from "../vectorText.js"
import { WarmIndex } from "./WarmIndex.js"

export interface WarmContext extends SqlManagerContext {
  /** The highest `seq` of a source that this instance has heard of (from `DataWritten` events). */
  readonly knownHighWater: (id: string) => number
  /** The store's scope: a background load runs in it (and stops when the store closes). */
  readonly scope: Scope.Scope
  /** A source estimated above this many bytes is read in the background, answered from SQL meanwhile. */
  readonly backgroundLoadBytes: number
}

/** Answers a warm manager gave from memory while it could not catch up with the database. */
const staleServed = Metric.tagged(cacheStaleServed, "cache", "warm")

/** Rows a warm read fetches per statement: a 200,000-entry source is read in 400 statements, none of whose results takes long to receive. */
const READ_PAGE = 500

/** Longest stretch of indexing rows before the event loop gets a turn (timers, signals, requests). */
const SLICE_MS = 10

/**
 * A search of a source this large runs in two turns of the event loop of its own, its base scores
 * and then the ranking (each about 5 ms of this thread at 50,000 rows, 20-30 ms at 200,000, twice
 * that the first time): a search never holds the loop for long, nor a compile over several large
 * sources for the sum of their searches.
 */
const LARGE_SEARCH_ROWS = 50_000

/**
 * Reads the source's rows past `after` into the index, in `seq` order: `READ_PAGE` rows a statement
 * (PGlite runs them on its worker thread), indexed in slices of at most about `SLICE_MS` with a
 * turn of the event loop between them, so that reading a large source never stalls this thread.
 */
const readInto = (context: WarmContext, descriptor: SqlSourceDescriptor, index: WarmIndex, after: number) =>
  Effect.gen(function* () {
    const { sql } = context
    const scratch = new Float32Array(descriptor.dimensions)
    let read = 0
    for (let from = after; ; ) {
      const rows = yield* sql<{ id: string; text: string; ts: unknown; metadata: unknown; vector: string | null; seq: unknown }>`
        SELECT id, text, ts, metadata, embedding::text AS vector, seq FROM ${sql(entriesTable(descriptor.storage))}
        WHERE seq > ${from} ORDER BY seq LIMIT ${READ_PAGE}`
      let slice = performance.now()
      for (const row of rows) {
        const metadata = row.metadata !== null && typeof row.metadata === "object" ? (row.metadata as Record<string, unknown>) : {}
        const vector = row.vector === null ? undefined : scratch
        if (vector !== undefined && parseVector(row.vector!, scratch, 0) !== descriptor.dimensions) {
          return yield* new DamagedEntry({ entry: row.id, reason: `has a vector of the wrong size (expected ${descriptor.dimensions})` })
        }
        index.upsert({ id: row.id, text: row.text, ts: rowNumber(row.ts), metadata, seq: rowNumber(row.seq) }, vector, terms(documentText({ text: row.text, metadata })))
        if (performance.now() - slice > SLICE_MS) {
          yield* eventLoopTurn
          slice = performance.now()
        }
      }
      read += rows.length
      // The time order kept current a page at a time, so that the first answer does not sort the whole source.
      index.settle()
      if (rows.length < READ_PAGE) return read
      from = rowNumber(rows[rows.length - 1]!.seq)
      yield* eventLoopTurn
    }
  })

/**
 * Opens the source warm: reads all its entries (the expensive part, done once per load). A source
 * estimated above `backgroundLoadBytes` is read in the background, and answered from SQL until it
 * is in memory; `estimatedBytes` is its weight meanwhile.
 */
export const openWarm = (context: WarmContext, descriptor: SqlSourceDescriptor, estimate: { readonly bytes: number; readonly rows: number }): Effect.Effect<StoreManager, StoreUnavailable> =>
  Effect.gen(function* () {
    const id = descriptor.id
    const estimatedBytes = estimate.bytes
    // Room for the rows it holds and an eighth more (later writes), so that reading it never grows the vectors.
    const index = new WarmIndex(descriptor.dimensions, estimate.rows + Math.max(64, Math.ceil(estimate.rows / 8)))
    const sqlBacked = sqlManager(context, descriptor)
    const state = { ready: false }
    const load = readInto(context, descriptor, index, 0).pipe(
      Effect.zipRight(Effect.sync(() => void (state.ready = true))),
      Effect.mapError(StoreUnavailable.failed(id, "reading its entries")),
      Effect.withSpan("WarmManager.load", { attributes: { source: id } })
    )
    const reading = estimatedBytes <= context.backgroundLoadBytes
      ? yield* Effect.as(load, undefined)
      : yield* Effect.forkIn(Effect.catchAll(load, (e) => Effect.logWarning(`${e.message}; it stays served from SQL`)), context.scope)
    const catchingUp = yield* Effect.makeSemaphore(1)
    const queryError = (operation: string) => StoreQueryError.failed(id, operation)

    /** Reads what is past the index's high water (one at a time; a no-op when nothing is). */
    const catchUp = (operation: string) =>
      catchingUp.withPermits(1)(readInto(context, descriptor, index, index.highWater)).pipe(Effect.mapError(queryError(operation)))

    /**
     * Catches up first when this instance has heard of writes the index does not have. When that
     * read fails (the database is down), what the index holds is served (counted as stale served,
     * logged once an outage) and the next answers retry in the background until it succeeds.
     */
    const outage = { stale: false, retrying: false }
    const caughtUp = Effect.suspend(() => {
      if (!outage.stale) return Effect.void
      outage.stale = false
      return Effect.logInfo(`source ${id}: caught up with the database again`)
    })
    const servedStale = (cause: StoreQueryError) =>
      Effect.zipRight(
        Metric.increment(staleServed),
        outage.stale ? Effect.void : Effect.zipRight(Effect.sync(() => void (outage.stale = true)), Effect.logWarning(`source ${id}: serving what it holds, its catch-up read failed: ${cause.reason}`))
      )
    const retryInBackground = Effect.suspend(() => {
      if (outage.retrying) return Effect.void
      outage.retrying = true
      return Effect.asVoid(
        Effect.forkIn(catchUp("catch-up").pipe(Effect.zipRight(caughtUp), Effect.ignore, Effect.ensuring(Effect.sync(() => void (outage.retrying = false)))), context.scope)
      )
    })
    const current = (operation: string) =>
      Effect.suspend(() => {
        if (context.knownHighWater(id) <= index.highWater) return caughtUp
        if (outage.stale) return Effect.zipRight(Metric.increment(staleServed), retryInBackground)
        return catchUp(operation).pipe(Effect.zipRight(caughtUp), Effect.catchAll(servedStale))
      })

    const answer = (key: string, operation: string, run: Effect.Effect<Array<StoreEntry>>) =>
      Effect.zipRight(current(operation), served(context, id, "warm", key, run))

    const getMostRecent = (limit: number, where?: Where): Effect.Effect<ReadonlyArray<StoreEntry>, StoreQueryError> =>
      !state.ready ? sqlBacked.getMostRecent(limit, where) : Effect.flatMap(validFilter(id, "getMostRecent", where), (valid) => {
        const n = countOf(limit)
        return answer(resultKey.recent(n, valid), "getMostRecent", Effect.sync(() => index.recent(n, valid)))
      }).pipe(Effect.withSpan("StoreManager.getMostRecent", { attributes: { source: id, served: "warm" }, captureStackTrace: false }))

    const findRelevant = (query: RelevanceQuery): Effect.Effect<ReadonlyArray<StoreEntry>, StoreQueryError> =>
      !state.ready ? sqlBacked.findRelevant!(query) : Effect.gen(function* () {
        const question = questionOf(query)
        const n = countOf(query.limit)
        if (question.texts.length === 0 || n === 0) return []
        const valid = yield* validFilter(id, "getMostRelevant", query.where)
        const vectors = yield* context.embedder.embed(question.texts).pipe(Effect.mapError(queryError("getMostRelevant")))
        const key = JSON.stringify(question.texts)
        const asked = { terms: question.terms, vectors, key }
        const search = () => index.search(asked, n, valid, new Set(question.exclude))
        const run = index.size < LARGE_SEARCH_ROWS ? Effect.sync(search) : Effect.zipRight(inTurnOfItsOwn(() => index.prepare(asked)), inTurnOfItsOwn(search))
        return yield* answer(resultKey.relevant(n, valid, question.texts, question.exclude), "getMostRelevant", run)
      }).pipe(Effect.withSpan("StoreManager.findRelevant", { attributes: { source: id, texts: query.question.length, served: "warm" }, captureStackTrace: false }))

    const getMostRelevant = (queries: ReadonlyArray<string>, limit: number, where?: Where) => findRelevant({ question: queries, limit, where })

    // A write goes to the database (which orders it); the manager then reads its own rows back.
    const insert: StoreManager["insert"] = (entries) => Effect.zipRight(sqlBacked.insert(entries), state.ready ? catchUp("insert") : Effect.void)

    const refresh: Effect.Effect<StoreManager, StoreUnavailable> = Effect.suspend(() =>
      !state.ready ? Effect.succeed(manager) : context.sql<{ seq: unknown }>`SELECT coalesce(max(seq), 0) AS seq FROM ${context.sql(entriesTable(descriptor.storage))}`.pipe(
        Effect.flatMap((rows) => (rowNumber(rows[0]?.seq ?? 0) > index.highWater ? catchUp("refresh") : Effect.void)),
        Effect.mapError(StoreUnavailable.failed(id, "refreshing it")),
        Effect.as(manager)
      )
    )

    // Dropped by the manager cache: a background read still running stops (it holds the index), and whoever still has the handle is answered from SQL.
    const release = Effect.suspend(() => {
      state.ready = false
      return reading === undefined ? Effect.void : Fiber.interrupt(reading)
    }).pipe(Effect.asVoid)

    const manager: StoreManager = { name: id, getMostRecent, getMostRelevant, findRelevant, insert, weight: () => (state.ready ? index.bytes : estimatedBytes), refresh, release }
    return manager
  })

/**
 * What a source's entries would take in a warm manager, estimated in bytes (Infinity when they
 * cannot be counted), and how many rows it holds (the index is made that large at once: growing a
 * 200,000-row index copied its vectors, 200 MB, in one go, up to half a second of this thread).
 */
export const estimateBytes = (context: WarmContext, descriptor: SqlSourceDescriptor): Effect.Effect<{ readonly bytes: number; readonly rows: number }> =>
  context.sql<{ n: unknown; bytes: unknown }>`
    SELECT count(*) AS n, coalesce(sum(octet_length(id) + octet_length(text) + octet_length(metadata::text)), 0) AS bytes
    FROM ${context.sql(entriesTable(descriptor.storage))}`.pipe(
    Effect.map((rows) => {
      const n = rowNumber(rows[0]?.n ?? 0)
      // Vectors as floats; strings as UTF-16 (about twice their UTF-8 bytes); each row's objects.
      return { bytes: n * (descriptor.dimensions * 4 + 240) + 2 * rowNumber(rows[0]?.bytes ?? 0), rows: n }
    }),
    Effect.either,
    Effect.map(Either.getOrElse(() => ({ bytes: Infinity, rows: 0 })))
  )
