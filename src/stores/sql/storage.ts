/**
 * Where a SQL store keeps things, and the startup migration that gets an older store there.
 *
 * - `pantheon_sources`: the catalog, one row per source id. Its `storage` number (from a sequence,
 *   unique) names the source's entries table, `pantheon_entries_<storage>`, and its indexes. Ids
 *   never reach SQL text, so distinct ids always get distinct tables, whatever their length (the
 *   first layout put the id in the name, and PostgreSQL cuts names at 63 bytes: long ids shared one).
 * - Entries carry `seq`, from one sequence, set on insert and (by a trigger) on every update, so a
 *   reader that holds a source's rows up to a sequence number can fetch exactly what is newer.
 * - Vectors: `vector(d)` when pgvector is there, `real[]` otherwise. Relevance in SQL is an exact
 *   scan (an HNSW index returned 30-40 % of the exact top 20 under a metadata filter); warm
 *   managers rank in memory and read the table once.
 * - Lexical relevance: `lexemes` (a tsvector of the analyzer's terms, src/relevance/analyzer.ts,
 *   each with its count as positions) under a GIN index, and `dl` (the entry's length in terms), both
 *   written by the library with every entry (null for a blank text).
 * - `pantheon_meta` records the layout version; `migrate` brings any older layout up to date in
 *   one transaction, under an advisory lock so that instances starting together migrate once.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"
import { UnsupportedLayout } from "../../domain/errors.js"
import { lexicalColumns } from "../../relevance/analyzer.js"
import { rowNumber } from "./rows.js"

export type VectorMode = "pgvector" | "array"

/** The layout this code reads and writes. 1: tables named by id; 2: by storage number, with `seq`; 3: with `lexemes` and `dl`. */
export const LAYOUT_VERSION = 3

/** Rows the layout-3 migration computes terms for per statement. */
const BACKFILL_BATCH = 500

/** Any number that is the same for every instance: the key of the migration's advisory lock. */
const MIGRATION_LOCK = 7_140_327_911

export const entriesTable = (storage: number) => `pantheon_entries_${storage}`

const indexName = (storage: number, suffix: "ts" | "meta" | "seq" | "type" | "pkey" | "lexemes") => `pantheon_entries_${storage}_${suffix}`

/** PostgreSQL truncates identifiers to 63 bytes: the name a layout-1 table really got. */
const truncatedName = (name: string) => {
  const bytes = Buffer.from(name, "utf8")
  return bytes.length <= 63 ? name : bytes.subarray(0, 63).toString("utf8")
}

/** Creates a source's entries table and its indexes (idempotent). */
export const createEntriesTable = (sql: SqlClient.SqlClient, storage: number, mode: VectorMode, dimensions: number) =>
  Effect.gen(function* () {
    const table = sql(entriesTable(storage))
    const column = mode === "pgvector" ? sql.literal(`vector(${dimensions})`) : sql.literal("real[]")
    yield* sql`CREATE TABLE IF NOT EXISTS ${table} (
      id text PRIMARY KEY,
      text text NOT NULL,
      ts bigint NOT NULL,
      metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
      embedding ${column},
      seq bigint NOT NULL DEFAULT nextval('pantheon_entry_seq'),
      lexemes tsvector,
      dl integer
    )`
    // A table renamed from layout 1 has no lexical columns yet (toLayout3 fills them).
    yield* sql`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS lexemes tsvector, ADD COLUMN IF NOT EXISTS dl integer`
    yield* sql`CREATE INDEX IF NOT EXISTS ${sql(indexName(storage, "lexemes"))} ON ${table} USING gin (lexemes)`
    yield* sql`CREATE INDEX IF NOT EXISTS ${sql(indexName(storage, "ts"))} ON ${table} (ts DESC, id DESC)`
    yield* sql`CREATE INDEX IF NOT EXISTS ${sql(indexName(storage, "meta"))} ON ${table} USING gin (metadata jsonb_path_ops)`
    yield* sql`CREATE INDEX IF NOT EXISTS ${sql(indexName(storage, "type"))} ON ${table} ((lower(metadata->>'type')))`
    yield* sql`CREATE INDEX IF NOT EXISTS ${sql(indexName(storage, "seq"))} ON ${table} (seq)`
    yield* sql`DROP TRIGGER IF EXISTS pantheon_touch_seq ON ${table}`
    yield* sql`CREATE TRIGGER pantheon_touch_seq BEFORE UPDATE ON ${table} FOR EACH ROW EXECUTE FUNCTION pantheon_touch_seq()`
  })

/**
 * Whether a table of this name is visible on the connection's `search_path` (not merely somewhere in
 * the database: two stores in two schemas of one database must not see each other's tables).
 */
const tableExists = (sql: SqlClient.SqlClient, name: string) =>
  Effect.map(
    sql<{ found: boolean }>`SELECT to_regclass(quote_ident(${name})) IS NOT NULL AS found`,
    (rows) => rows[0]!.found
  )

/** The shared objects: catalog, sequences, the `seq` trigger function, the layout record. */
const createShared = (sql: SqlClient.SqlClient) =>
  Effect.gen(function* () {
    yield* sql`CREATE TABLE IF NOT EXISTS pantheon_meta (key text PRIMARY KEY, value text NOT NULL)`
    yield* sql`CREATE SEQUENCE IF NOT EXISTS pantheon_storage_seq`
    yield* sql`CREATE SEQUENCE IF NOT EXISTS pantheon_entry_seq`
    yield* sql.unsafe(`CREATE OR REPLACE FUNCTION pantheon_touch_seq() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN NEW.seq := nextval('pantheon_entry_seq'); RETURN NEW; END $$`)
    yield* sql`CREATE TABLE IF NOT EXISTS pantheon_sources (
      id text PRIMARY KEY,
      storage bigint NOT NULL UNIQUE DEFAULT nextval('pantheon_storage_seq'),
      label text,
      version integer NOT NULL DEFAULT 1,
      dimensions integer NOT NULL,
      vector_mode text NOT NULL,
      created_at bigint NOT NULL,
      removed boolean NOT NULL DEFAULT false
    )`
  })

/** Layout 1 → 2: number every source, rename (or copy, where two ids shared one) its table, add `seq`. */
const fromLayout1 = (sql: SqlClient.SqlClient) =>
  Effect.gen(function* () {
    yield* sql`ALTER TABLE pantheon_sources ADD COLUMN IF NOT EXISTS storage bigint`
    yield* sql`ALTER TABLE pantheon_sources ADD COLUMN IF NOT EXISTS removed boolean NOT NULL DEFAULT false`
    const sources = yield* sql<{ id: string; dimensions: number; vector_mode: string }>`
      SELECT id, dimensions, vector_mode FROM pantheon_sources ORDER BY created_at, id`
    const claimed = new Map<string, string>()
    for (const source of sources) {
      const [{ storage }] = yield* sql<{ storage: number | string }>`
        UPDATE pantheon_sources SET storage = nextval('pantheon_storage_seq') WHERE id = ${source.id} RETURNING storage`
      const n = rowNumber(storage)
      const old = truncatedName(`pantheon_entries_${source.id}`)
      const exists = yield* tableExists(sql, old)
      const mode = source.vector_mode === "pgvector" ? "pgvector" : "array"
      const sharedWith = claimed.get(old)
      if (sharedWith !== undefined) {
        // Layout 1 gave both ids one table: each keeps a copy of what it showed, mixed as it was.
        yield* Effect.logWarning(
          `migration: sources ${JSON.stringify(sharedWith)} and ${JSON.stringify(source.id)} shared the table ${old} (ids too long for layout 1); each keeps a copy of its entries, which were mixed`
        )
        yield* createEntriesTable(sql, n, mode, source.dimensions)
        const [{ storage: from }] = yield* sql<{ storage: number | string }>`SELECT storage FROM pantheon_sources WHERE id = ${sharedWith}`
        yield* sql`INSERT INTO ${sql(entriesTable(n))} (id, text, ts, metadata, embedding) SELECT id, text, ts, metadata, embedding FROM ${sql(entriesTable(rowNumber(from)))}`
      } else if (exists) {
        claimed.set(old, source.id)
        yield* sql`ALTER TABLE ${sql(old)} RENAME TO ${sql(entriesTable(n))}`
        for (const suffix of ["ts", "meta", "pkey"] as const) {
          yield* sql`ALTER INDEX IF EXISTS ${sql(truncatedName(`${old}_${suffix}`))} RENAME TO ${sql(indexName(n, suffix))}`
        }
        yield* sql`DROP INDEX IF EXISTS ${sql(truncatedName(`${old}_hnsw`))}`
        yield* sql`ALTER TABLE ${sql(entriesTable(n))} ADD COLUMN IF NOT EXISTS seq bigint`
        yield* sql`UPDATE ${sql(entriesTable(n))} SET seq = nextval('pantheon_entry_seq') WHERE seq IS NULL`
        yield* sql`ALTER TABLE ${sql(entriesTable(n))} ALTER COLUMN seq SET DEFAULT nextval('pantheon_entry_seq'), ALTER COLUMN seq SET NOT NULL`
        yield* createEntriesTable(sql, n, mode, source.dimensions)
      } else {
        yield* createEntriesTable(sql, n, mode, source.dimensions)
      }
    }
    yield* sql`ALTER TABLE pantheon_sources ALTER COLUMN storage SET DEFAULT nextval('pantheon_storage_seq'), ALTER COLUMN storage SET NOT NULL`
    yield* sql`CREATE UNIQUE INDEX IF NOT EXISTS pantheon_sources_storage ON pantheon_sources (storage)`
  })

/**
 * Layout 2 → 3: every entries table gains `lexemes` and `dl`, computed here for the rows it holds
 * (the analyzer runs in this library, not in the database), and their GIN index. Updating a row
 * gives it a new `seq` (the trigger): warm managers on other instances read the rows again.
 */
const toLayout3 = (sql: SqlClient.SqlClient) =>
  Effect.gen(function* () {
    const sources = yield* sql<{ storage: number | string }>`SELECT storage FROM pantheon_sources ORDER BY storage`
    for (const { storage } of sources) {
      const n = rowNumber(storage)
      if (!(yield* tableExists(sql, entriesTable(n)))) continue
      const table = sql(entriesTable(n))
      yield* sql`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS lexemes tsvector, ADD COLUMN IF NOT EXISTS dl integer`
      let after = ""
      for (;;) {
        const rows = yield* sql<{ id: string; text: string; metadata: unknown }>`
          SELECT id, text, metadata FROM ${table} WHERE id COLLATE "C" > ${after} ORDER BY id COLLATE "C" LIMIT ${BACKFILL_BATCH}`
        if (rows.length === 0) break
        after = rows[rows.length - 1]!.id
        const payload = JSON.stringify(rows.map((r) => ({ id: r.id, ...lexicalColumns({ text: r.text, metadata: r.metadata !== null && typeof r.metadata === "object" ? (r.metadata as Record<string, unknown>) : {} }) })))
        yield* sql`UPDATE ${table} t SET lexemes = x.lexemes::tsvector, dl = x.dl
          FROM jsonb_to_recordset(${payload}::jsonb) AS x(id text, lexemes text, dl integer) WHERE t.id = x.id`
      }
      yield* sql`CREATE INDEX IF NOT EXISTS ${sql(indexName(n, "lexemes"))} ON ${table} USING gin (lexemes)`
    }
  })

/** Brings the store's layout to `LAYOUT_VERSION` (creating it when empty), in one transaction. */
export const migrate = (sql: SqlClient.SqlClient) =>
  sql.withTransaction(
    Effect.gen(function* () {
      yield* sql`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`
      const hadCatalog = yield* tableExists(sql, "pantheon_sources")
      const hadMeta = yield* tableExists(sql, "pantheon_meta")
      const layout = !hadCatalog ? LAYOUT_VERSION : hadMeta ? rowNumber((yield* sql<{ value: string }>`SELECT value FROM pantheon_meta WHERE key = 'layout'`)[0]?.value ?? 1) : 1
      if (layout > LAYOUT_VERSION) {
        return yield* new UnsupportedLayout({ layout, supported: LAYOUT_VERSION })
      }
      yield* createShared(sql)
      if (layout < 2) yield* fromLayout1(sql)
      if (layout < 3) yield* toLayout3(sql)
      yield* sql`INSERT INTO pantheon_meta (key, value) VALUES ('layout', ${String(LAYOUT_VERSION)})
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value`
      return layout
    })
  )
