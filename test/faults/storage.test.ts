/**
 * Storage names that cannot collide, the migration of a store written by the first layout, and the
 * registration races, on PGlite and on the PostgreSQL server.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it, layer } from "@effect/vitest"
import { Context, Effect, Either, Layer, ManagedRuntime, Stream } from "effect"
import { Embedder } from "../../src/embedding/Embedder.js"
import { PersistenceAdapterLive } from "../../src/layers/PersistenceAdapterLive.js"
import { PostgresStoreLive } from "../../src/layers/PostgresStoreLive.js"
import { StoreEvents } from "../../src/services/StoreEvents.js"
import { StoreManagerRegistry } from "../../src/services/StoreManagerRegistry.js"
import { PgliteClient } from "../../src/stores/sql/PgliteClient.js"
import { SqlStore } from "../../src/stores/sql/SqlStore.js"
import { entriesTable, LAYOUT_VERSION } from "../../src/stores/sql/storage.js"
import { freshSchema, query, schemaForFile } from "../support/postgres.js"

const texts = (entries: ReadonlyArray<{ text: unknown }>) => entries.map((e) => e.text)
const longId = (end: string) => `source_${"x".repeat(111)}_${end}`

/** Two ids that share their first 119 characters keep their entries apart. */
const longIdsStayApart = Effect.gen(function* () {
  const store = yield* SqlStore
  const [a, b] = [longId("a"), longId("b")]
  expect(a.length).toBe(120)
  for (const id of [a, b]) {
    yield* store.registerSource(id)
    yield* (yield* store.open(id)).insert([{ id: "1", text: `only in ${id.slice(-1)}`, timestamp: 1 }])
  }
  expect(texts(yield* (yield* store.open(a)).getMostRecent(10))).toEqual(["only in a"])
  expect(texts(yield* (yield* store.open(b)).getMostRecent(10))).toEqual(["only in b"])
  const tooLong = yield* Effect.either(store.registerSource("y".repeat(129)))
  expect(Either.isLeft(tooLong) && tooLong.left.message).toContain("is longer than 128 characters (129)")
})

/** Six registrations of one new id at once: all succeed, one source, one `SourceAdded`. */
const concurrentRegistrations = Effect.gen(function* () {
  const store = yield* SqlStore
  const events = yield* StoreEvents
  const added = yield* Effect.fork(Stream.runCollect(Stream.takeUntil(yield* events.stream, (e) => e._tag === "SourceAdded")))
  const results = yield* Effect.all(Array.from({ length: 6 }, () => Effect.either(store.registerSource("raced"))), { concurrency: "unbounded" })
  expect(results.every(Either.isRight)).toBe(true)
  expect(new Set(results.map((r) => Either.isRight(r) && r.right.storage)).size).toBe(1)
  expect([...(yield* added.await.pipe(Effect.flatten))].filter((e) => e._tag === "SourceAdded")).toHaveLength(1)
})

const Embedded = SqlStore.layer().pipe(
  Layer.provideMerge(Layer.mergeAll(PgliteClient.layer({ dataDir: "memory://" }), Embedder.layerFeatureHashing({ dimensions: 8 }), StoreEvents.layerLocal))
)

layer(Embedded, { timeout: "60 seconds" })("on PGlite", (it) => {
  it.effect("long ids that differ only at the end get tables of their own", () => longIdsStayApart)
  it.scoped("concurrent registrations of one new id all succeed", () => concurrentRegistrations)
})

describe("the migration of a layout-1 store", () => {
  /** A store as the first layout wrote it: tables named by id (cut at 63 bytes by PostgreSQL). */
  const layout1 = (sql: SqlClient.SqlClient) =>
    Effect.gen(function* () {
      yield* sql`CREATE TABLE pantheon_sources (id text PRIMARY KEY, label text, version integer NOT NULL DEFAULT 1, dimensions integer NOT NULL, vector_mode text NOT NULL, created_at bigint NOT NULL)`
      const ids = ["chat", `long_${"z".repeat(41)}_1`, `long_${"z".repeat(41)}_2`]
      for (const [i, id] of ids.entries()) {
        yield* sql`INSERT INTO pantheon_sources (id, dimensions, vector_mode, created_at) VALUES (${id}, 8, 'pgvector', ${i})`
        const table = `pantheon_entries_${id}`
        yield* sql`CREATE TABLE IF NOT EXISTS ${sql(table)} (id text PRIMARY KEY, text text NOT NULL, ts bigint NOT NULL, metadata jsonb NOT NULL DEFAULT '{}'::jsonb, embedding vector(8))`
        yield* sql`CREATE INDEX IF NOT EXISTS ${sql(`${table}_ts`)} ON ${sql(table)} (ts DESC)`
        yield* sql`INSERT INTO ${sql(table)} (id, text, ts, embedding) VALUES (${`e${i}`}, ${`written for ${id}`}, ${i}, '[1,0,0,0,0,0,0,0]') ON CONFLICT DO NOTHING`
      }
      return ids
    })

  it.live("renames each table to its storage number, keeps every entry, and copies a table two ids shared", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const ids = yield* layout1(sql)
      const open = Effect.map(Layer.build(SqlStore.layer()), Context.get(SqlStore))
      const store = yield* open
      expect((yield* store.catalog).map((d) => d.id)).toEqual(ids)
      expect(texts(yield* (yield* store.open("chat")).getMostRecent(10))).toEqual(["written for chat"])
      // Both long ids had one table (their names agree on 63 bytes): each keeps what it showed.
      for (const id of ids.slice(1)) expect(texts(yield* (yield* store.open(id)).getMostRecent(10)).sort()).toEqual([`written for ${ids[1]}`, `written for ${ids[2]}`])
      // From now on they are apart.
      yield* (yield* store.open(ids[1]!)).insert([{ id: "new", text: "after the migration", timestamp: 10 }])
      expect(texts(yield* (yield* store.open(ids[2]!)).getMostRecent(10))).not.toContain("after the migration")
      const layout = yield* sql<{ value: string }>`SELECT value FROM pantheon_meta WHERE key = 'layout'`
      expect(layout[0]!.value).toBe(String(LAYOUT_VERSION))
      // The layout-3 columns are there too, computed for the rows it moved.
      const lexical = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(entriesTable((yield* store.catalog)[0]!.storage))} WHERE lexemes IS NOT NULL`
      expect(lexical[0]!.n).toBe(1)
      const old = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE 'pantheon_entries_chat%'`
      expect(old[0]!.n).toBe(0)
      // A second start finds nothing to migrate.
      const again = yield* open
      expect((yield* again.catalog).map((d) => d.id)).toEqual(ids)
    }).pipe(
      Effect.scoped,
      Effect.provide(Layer.mergeAll(PgliteClient.layer({ dataDir: "memory://" }), Embedder.layerFeatureHashing({ dimensions: 8 }), StoreEvents.layerLocal))
    ), 60_000)
})

const db = await schemaForFile("storage")
const up = db.up

describe.skipIf(!up)("on the PostgreSQL server", () => {
  const channel = `pantheon_storage_${Math.random().toString(36).slice(2, 8)}`
  const instance = () =>
    ManagedRuntime.make(
      PersistenceAdapterLive({ cache: { ttl: "10 minutes" } }).pipe(
        Layer.provideMerge(PostgresStoreLive({ url: db.url, channel, maxConnections: 4, embedder: Embedder.layerFeatureHashing({ dimensions: 8 }) }))
      )
    )

  it("long ids get tables of their own; concurrent registrations all succeed; the server's error text is kept", async () => {
    const a = instance()
    try {
      await a.runPromise(longIdsStayApart)
      await a.runPromise(Effect.scoped(concurrentRegistrations))
      // PostgreSQL refuses NUL in text: the message says so (it used to say only "Failed to execute statement").
      const error = await a.runPromise(Effect.flip(Effect.flatMap(SqlStore, (s) => Effect.flatMap(s.open("raced"), (m) => m.insert([{ id: "n", text: "nul \u0000 here", timestamp: 1 }])))))
      expect(error._tag).toBe("StoreQueryError")
      expect(error.message).toMatch(/unsupported Unicode escape sequence|invalid byte sequence|0x00/)
    } finally {
      await a.dispose()
    }
  }, 60_000)

  it("a store in another schema of the same database starts fresh: it never reads this schema's tables", async () => {
    const a = instance()
    const other = await freshSchema("storage_other")
    const b = ManagedRuntime.make(
      PersistenceAdapterLive({ cache: { ttl: "10 minutes" } }).pipe(
        Layer.provideMerge(PostgresStoreLive({ url: other.url, channel: `${channel}_other`, maxConnections: 2, embedder: Embedder.layerFeatureHashing({ dimensions: 8 }) }))
      )
    )
    try {
      await a.runPromise(Effect.flatMap(SqlStore, (s) => s.registerSource("only-in-a")))
      // The first store's pantheon_meta and pantheon_sources exist in the database, but not on b's search_path.
      expect(await b.runPromise(Effect.flatMap(StoreManagerRegistry, (r) => Effect.map(r.catalog, (c) => c.descriptors)))).toEqual([])
      const tables = await query<{ n: number }>("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1 AND tablename IN ('pantheon_meta', 'pantheon_sources')", [other.schema])
      expect(tables[0]!.n).toBe(2)
    } finally {
      await Promise.all([a.dispose(), b.dispose()])
      await other.drop()
    }
  }, 60_000)

  it("a label of 9,000 characters is stored, and the change still reaches the other instance", async () => {
    const a = instance()
    const b = instance()
    try {
      await a.runPromise(Effect.flatMap(SqlStore, (s) => s.registerSource("labelled", { label: "short" })))
      const catalogOfB = () => b.runPromise(Effect.flatMap(StoreManagerRegistry, (r) => Effect.map(r.catalog, (c) => c.descriptors)))
      expect((await catalogOfB()).find((d) => d.id === "labelled")?.label).toBe("short")
      const long = "l".repeat(9000)
      await a.runPromise(Effect.flatMap(SqlStore, (s) => s.registerSource("labelled", { label: long })))
      const deadline = Date.now() + 5000
      while ((await catalogOfB()).find((d) => d.id === "labelled")?.label !== long && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      expect((await catalogOfB()).find((d) => d.id === "labelled")?.label).toBe(long)
    } finally {
      await Promise.all([a.dispose(), b.dispose()])
    }
  }, 60_000)
})
