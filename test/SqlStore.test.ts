import { describe, expect, it, layer } from "@effect/vitest"
import { Context, Effect, Either, Layer, Stream, TestClock } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Embedder } from "../src/embedding/Embedder.js"
import { StoreEvents } from "../src/services/StoreEvents.js"
import { PgliteClient } from "../src/stores/sql/PgliteClient.js"
import * as Sql from "../src/stores/sql/SqlStore.js"
import type { StoreEntry } from "../src/domain/schemas.js"
import { corpus } from "./support/corpus.js"


/** A second SqlStore on the same database that ignores pgvector: the path a server without it takes. */
class ArrayStore extends Context.Tag("test/ArrayStore")<ArrayStore, Sql.SqlStoreShape>() {}

/** One PGlite for the whole file (it takes ~2 s to start); tests use their own source ids. */
const Stores = Layer.mergeAll(Sql.SqlStore.layer({ vectorMode: "auto" }), Layer.scoped(ArrayStore, Sql.make({ vectorMode: "array" }))).pipe(
  Layer.provideMerge(Layer.mergeAll(PgliteClient.layer({ dataDir: "memory://" }), Embedder.layerFeatureHashing({ dimensions: 256 }), StoreEvents.layerLocal))
)

const texts = (entries: ReadonlyArray<StoreEntry>) => entries.map((e) => e.text)

const seeded = (store: Sql.SqlStoreShape, id: string) =>
  Effect.gen(function* () {
    yield* store.registerSource(id)
    const manager = yield* store.open(id)
    yield* manager.insert(corpus)
    return manager
  })

layer(Stores, { timeout: "60 seconds" })("SqlStore on PGlite", (it) => {
  it.effect("detects pgvector in PGlite", () =>
    Effect.gen(function* () {
      expect((yield* Sql.SqlStore).vectorMode).toBe("pgvector")
      expect((yield* ArrayStore).vectorMode).toBe("array")
    }))

  it.effect("returns the most recent entries, newest first, with their timestamps and metadata", () =>
    Effect.gen(function* () {
      const manager = yield* seeded(yield* Sql.SqlStore, "recent")
      const recent = yield* manager.getMostRecent(2)
      expect(texts(recent)).toEqual([corpus[4]!.text, corpus[3]!.text])
      expect(recent[0]).toMatchObject({ id: "5", timestamp: Date.parse(corpus[4]!.timestamp), metadata: corpus[4]!.metadata })
    }))

  it.effect("upserts by id", () =>
    Effect.gen(function* () {
      const manager = yield* seeded(yield* Sql.SqlStore, "upsert")
      yield* manager.insert([{ ...corpus[4]!, text: "lunch moved to friday" }])
      const recent = yield* manager.getMostRecent(10)
      expect(recent).toHaveLength(5)
      expect(recent[0]!.text).toBe("lunch moved to friday")
    }))

  it.effect("filters recent and relevant queries by metadata equality", () =>
    Effect.gen(function* () {
      const manager = yield* seeded(yield* Sql.SqlStore, "filters")
      expect(texts(yield* manager.getMostRecent(10, { user: "u1" }))).toEqual([corpus[2]!.text, corpus[0]!.text])
      expect(texts(yield* manager.getMostRelevant(["database"], 10, { type: "image" }))).toEqual([corpus[3]!.text])
      expect(yield* manager.getMostRecent(10, { user: "nobody" })).toEqual([])
    }))

  it.effect("ranks by similarity, finds images by caption, and lists each text once", () =>
    Effect.gen(function* () {
      const manager = yield* seeded(yield* Sql.SqlStore, "relevant")
      const found = texts(yield* manager.getMostRelevant(["database migration timeout", "migration timed out"], 3))
      expect(found.slice(0, 2).sort()).toEqual([corpus[0]!.text, corpus[2]!.text].sort())
      expect(new Set(found).size).toBe(found.length)
      expect(texts(yield* manager.getMostRelevant(["architecture diagram"], 1))).toEqual([corpus[3]!.text])
      expect(yield* manager.getMostRelevant([], 3)).toEqual([])
    }))

  it.effect("ranks the same with pgvector (HNSW) and with exact cosine over real[]", () =>
    Effect.gen(function* () {
      const withIndex = yield* seeded(yield* Sql.SqlStore, "ranked_vector")
      const exact = yield* seeded(yield* ArrayStore, "ranked_array")
      for (const query of [["database migration"], ["pizza lunch"], ["webhook retries", "deployment"]]) {
        expect(texts(yield* exact.getMostRelevant(query, 3))).toEqual(texts(yield* withIndex.getMostRelevant(query, 3)))
      }
      expect(texts(yield* exact.getMostRelevant(["database"], 5, { type: "image" }))).toEqual([corpus[3]!.text])
    }))

  it.effect("serves repeated queries from the result cache until the source is written to", () =>
    Effect.gen(function* () {
      const store = yield* Sql.SqlStore
      const manager = yield* seeded(store, "cached")
      const first = yield* manager.getMostRelevant(["database migration"], 3)
      const before = yield* store.resultStats
      expect(yield* manager.getMostRelevant(["database migration"], 3)).toEqual(first)
      expect(yield* manager.getMostRecent(2)).toEqual(yield* manager.getMostRecent(2))
      const after = yield* store.resultStats
      expect(after.hits - before.hits).toBe(2)
      yield* manager.insert([{ id: "new", text: "database migration finished at last", timestamp: "2024-03-02T00:00:00Z", metadata: {} }])
      expect(texts(yield* manager.getMostRecent(1))).toEqual(["database migration finished at last"])
      expect(texts(yield* manager.getMostRelevant(["database migration"], 3))).toContain("database migration finished at last")
    }))

  it.effect("expires cached results after their ttl", () =>
    Effect.gen(function* () {
      const store = yield* Sql.SqlStore
      const manager = yield* seeded(store, "ttl")
      yield* manager.getMostRecent(1)
      const before = yield* store.resultStats
      yield* TestClock.adjust("61 seconds")
      yield* manager.getMostRecent(1)
      expect((yield* store.resultStats).misses - before.misses).toBe(1)
    }))

  it.effect("refuses hostile source ids before any SQL is built", () =>
    Effect.gen(function* () {
      const store = yield* Sql.SqlStore
      for (const id of ["x'; DROP TABLE pantheon_sources; --", 'a"b', "a b", "1abc", "ünïcode", "a".repeat(129), "", "chat;"]) {
        const registered = yield* Effect.either(store.registerSource(id))
        expect(Either.isLeft(registered) && registered.left._tag).toBe("InvalidSourceId")
        const opened = yield* Effect.either(store.open(id))
        expect(Either.isLeft(opened) && opened.left._tag).toBe("InvalidSourceId")
      }
      expect((yield* store.catalog).every((d) => !d.id.includes("DROP"))).toBe(true)
    }))

  it.effect("treats hostile filter values and texts as data", () =>
    Effect.gen(function* () {
      const manager = yield* seeded(yield* Sql.SqlStore, "hostile")
      const nasty = ["'; DROP TABLE pantheon_sources; --", "\\\"}", "Robert'); --", "😀 ünï", "x".repeat(10_000)]
      yield* manager.insert(nasty.map((text, i) => ({ id: `n${i}`, text, timestamp: 1_700_000_000_000 + i, metadata: { tag: text } })))
      for (const value of nasty) {
        expect(texts(yield* manager.getMostRecent(10, { tag: value }))).toEqual([value])
        // Relevance returns only what scores above 0: a question with no word in it finds nothing.
        expect(texts(yield* manager.getMostRelevant([value], 10, { tag: value }))).toEqual(/[\p{L}\p{N}]/u.test(value) ? [value] : [])
      }
      expect((yield* (yield* Sql.SqlStore).catalog).length).toBeGreaterThan(0)
    }))

  it.effect("refuses filters with an unknown operator or a value that is not a scalar, with a typed error naming the path", () =>
    Effect.gen(function* () {
      const manager = yield* seeded(yield* Sql.SqlStore, "badfilter")
      const result = yield* Effect.either(manager.getMostRecent(5, { user: { $regex: "u.*" } }))
      expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "StoreQueryError", operation: "getMostRecent" })
      expect(Either.isLeft(result) && result.left.message).toContain("where.user.$regex")
      const nested = yield* Effect.either(manager.getMostRelevant(["q"], 5, { user: [1] }))
      expect(Either.isLeft(nested) && nested.left.message).toContain("where.user")
    }))

  it.effect("refuses entries with an invalid timestamp and inserts nothing from that call", () =>
    Effect.gen(function* () {
      const store = yield* Sql.SqlStore
      yield* store.registerSource("badtime")
      const manager = yield* store.open("badtime")
      const result = yield* Effect.either(manager.insert([corpus[0]!, { id: "x", text: "t", timestamp: "not a time", metadata: {} }]))
      expect(Either.isLeft(result) && result.left.message).toContain("invalid timestamp")
      expect(yield* manager.getMostRecent(10)).toEqual([])
    }))

  it.effect("lists registered sources as the catalog and publishes registrations and removals", () =>
    Effect.gen(function* () {
      const store = yield* Sql.SqlStore
      const seen = yield* Effect.fork(Stream.runCollect(Stream.take(yield* (yield* StoreEvents).stream, 3)))
      yield* store.registerSource("cat_a", { label: "A" })
      yield* store.registerSource("cat_a", { label: "A2" })
      yield* store.removeSource("cat_a")
      const changes = [...(yield* seen.await.pipe(Effect.flatten))]
      expect(changes.map((c) => c._tag)).toEqual(["SourceAdded", "SourceChanged", "SourceRemoved"])
      expect((yield* store.catalog).some((d) => d.id === "cat_a")).toBe(false)
      const unregistered = yield* Effect.either(store.open("cat_a"))
      expect(Either.isLeft(unregistered) && unregistered.left).toMatchObject({ _tag: "StoreUnavailable", id: "cat_a" })
    }).pipe(Effect.scoped))
})

describe("data directory", () => {
  it.live("two layers on one directory share one database, closed with its last user", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "pantheon-shared-"))
      try {
        const [first, second] = yield* Effect.all([PgliteClient, PgliteClient.pipe(Effect.provide(PgliteClient.layer({ dataDir: dir })))]).pipe(
          Effect.provide(PgliteClient.layer({ dataDir: dir }))
        )
        expect(second.pglite).toBe(first.pglite)
        expect(first.pglite.closed).toBe(true)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }), 60_000)

  it.live("keeps the data across a close and a re-open", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "pantheon-"))
      const store = (dataDir: string) =>
        Sql.SqlStore.layer().pipe(Layer.provideMerge(Layer.mergeAll(PgliteClient.layer({ dataDir }), Embedder.layerFeatureHashing(), StoreEvents.layerLocal)))
      try {
        yield* Effect.gen(function* () {
          const s = yield* Sql.SqlStore
          const manager = yield* seeded(s, "durable")
          expect(yield* manager.getMostRecent(1)).toHaveLength(1)
        }).pipe(Effect.provide(store(dir)))
        const recent = yield* Effect.gen(function* () {
          const s = yield* Sql.SqlStore
          expect((yield* s.catalog).map((d) => d.id)).toEqual(["durable"])
          return yield* (yield* s.open("durable")).getMostRecent(10)
        }).pipe(Effect.provide(store(dir)))
        expect(texts(recent)).toHaveLength(5)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }), 60_000)
})
