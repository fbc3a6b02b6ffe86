/**
 * Warm managers: a source's entries in memory answer exactly as the SQL statements do, stay current
 * through writes (here and on another instance) and through the cache's reload after `ttl`, and
 * stay within the byte budget.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it, layer } from "@effect/vitest"
import { Context, Effect, Either, Layer, ManagedRuntime, Metric, TestClock } from "effect"
import { ALL, parseFilter } from "../src/domain/filter.js"
import type { StoreEntry, Where } from "../src/domain/schemas.js"
import { Embedder } from "../src/embedding/Embedder.js"
import { featureHashingVector } from "../src/embedding/hashing.js"
import { PersistenceAdapterLive } from "../src/layers/PersistenceAdapterLive.js"
import { PostgresStoreLive } from "../src/layers/PostgresStoreLive.js"
import * as M from "../src/metrics.js"
import { ContextCompiler } from "../src/services/ContextCompiler.js"
import { bytesHeld, ManagerCache } from "../src/services/ManagerCache.js"
import { StoreEvents } from "../src/services/StoreEvents.js"
import { StoreManagerRegistry } from "../src/services/StoreManagerRegistry.js"
import { PgliteClient } from "../src/stores/sql/PgliteClient.js"
import { SqlStore } from "../src/stores/sql/SqlStore.js"
import { entriesTable } from "../src/stores/sql/storage.js"
import { terms } from "../src/relevance/analyzer.js"
import { idf, roundScore, termScore, VECTOR_DEPTH, VECTOR_WEIGHT } from "../src/relevance/scoring.js"
import { WarmIndex } from "../src/stores/sql/warm/WarmIndex.js"
import { schemaForFile } from "./support/postgres.js"

const texts = (entries: ReadonlyArray<StoreEntry>) => entries.map((e) => e.text)
const filter = (where: Where) => Either.getOrThrow(parseFilter(where))

let seed = 99
const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32)
const words = "deploy checkout database migration timeout payment webhook retry cache latency invoice refund agent memory vector diagram".split(" ")
const sentence = () => Array.from({ length: 3 + Math.floor(random() * 6) }, () => words[Math.floor(random() * words.length)]).join(" ")

/** A corpus with repeated texts, images in mixed case, a field to filter on. */
const corpus = (n: number) =>
  Array.from({ length: n }, (_, i) => {
    const image = i % 7 === 0
    return {
      id: `e${String(i).padStart(4, "0")}`,
      text: image ? `https://img.example/${i}.png` : i % 11 === 0 ? "a repeated text about the database" : sentence(),
      timestamp: 1_700_000_000_000 + (i % 50) * 1000,
      metadata: { user: `u${i % 3}`, ...(image ? { type: i % 2 === 0 ? "image" : "Image", caption: sentence() } : { type: "chat" }) }
    }
  })

describe("WarmIndex", () => {
  interface Row { id: string; text: string; ts: number; vector: Float32Array; terms: Array<string> }
  /**
   * The reference, straight from the formula (src/relevance/scoring.ts) over every row: BM25, the
   * cosine of the VECTOR_DEPTH nearest, the base spread to the rows CONTEXT_RADIUS away in time.
   */
  const reference = (rows: ReadonlyArray<Row>, question: { terms: ReadonlyArray<string>; vectors: ReadonlyArray<Float32Array> }, limit: number, keep: (r: Row) => boolean = () => true) => {
    const n = rows.length
    const average = rows.reduce((sum, r) => sum + Math.min(r.terms.length, 1e9), 0) / n
    const lexical = rows.map((r) => {
      let s = 0
      for (const t of new Set(question.terms)) {
        const tf = r.terms.filter((x) => x === t).length
        if (tf === 0) continue
        const df = rows.filter((o) => o.terms.includes(t)).length
        s += termScore(idf(n, df), tf, r.terms.length, average)
      }
      return s
    })
    const best = Math.max(0, ...lexical)
    const cosine = rows.map((r) => Math.round(Math.max(...question.vectors.map((v) => v.reduce((a, x, j) => a + x * r.vector[j]!, 0))) * 1e6) / 1e6)
    const nearestIds = new Set(rows.map((r, i) => ({ id: r.id, s: cosine[i]! })).sort((x, y) => y.s - x.s || (x.id < y.id ? -1 : 1)).slice(0, VECTOR_DEPTH).map((x) => x.id))
    const base = rows.map((r, i) => (best > 0 ? lexical[i]! / best : 0) + (nearestIds.has(r.id) ? VECTOR_WEIGHT * Math.max(0, cosine[i]!) : 0))
    const timeline = rows.map((r, i) => ({ r, i })).sort((x, y) => x.r.ts - y.r.ts || (x.r.id < y.r.id ? -1 : 1))
    const at = (p: number) => (p >= 0 && p < timeline.length ? base[timeline[p]!.i]! : 0)
    const scored = timeline.map(({ r }, p) => ({ r, score: roundScore(at(p) + 0.5 * (at(p - 1) + at(p + 1)) + 0.25 * (at(p - 2) + at(p + 2))) }))
    const ranked = scored.filter((x) => x.score > 0 && keep(x.r)).sort((x, y) => y.score - x.score || (x.r.id < y.r.id ? -1 : 1))
    const seen = new Set<string>()
    const distinct = ranked.filter((x) => !seen.has(x.r.text) && (seen.add(x.r.text), true))
    const scoreOf = new Map(distinct.map((x) => [x.r.text, x.score]))
    return Object.assign(distinct.slice(0, limit).map((x) => x.r.text), { scoreOf })
  }
  /**
   * The index's answer against the reference's: float32 cosines (SIMD, any order) and the
   * reference's doubles may round a near-tie to different sixth decimals, so the ranking must agree
   * score for score, to that precision.
   */
  const expectSameRanking = (got: ReadonlyArray<unknown>, want: ReturnType<typeof reference>) => {
    expect(got).toHaveLength(want.length)
    got.forEach((text, i) => expect(Math.abs(want.scoreOf.get(text as string)! - want.scoreOf.get(want[i]!)!)).toBeLessThan(3e-6))
  }
  const question = (text: string, dims: number) => ({ terms: terms(text), vectors: [featureHashingVector(text, dims)], key: text })
  const rowsOf = (count: number, dims: number) =>
    Array.from({ length: count }, (_, i) => {
      const text = i % 5 === 0 ? `dup ${i % 3}` : sentence()
      return { id: `r${String(i).padStart(4, "0")}`, text, ts: Math.floor(i / 2), vector: featureHashingVector(text, dims), terms: terms(text) }
    })
  const indexOf = (rows: ReadonlyArray<Row>, dims: number) => {
    const index = new WarmIndex(dims)
    rows.forEach((r, i) => index.upsert({ id: r.id, text: r.text, ts: r.ts, metadata: {}, seq: i + 1 }, r.vector, r.terms))
    return index
  }

  it("ranks by hybrid relevance exactly as the formula does over every row, with duplicate texts and ties in time", () => {
    const rows = rowsOf(600, 32)
    const index = indexOf(rows, 32)
    for (let q = 0; q < 30; q++) {
      const asked = question(Array.from({ length: 1 + (q % 3) }, sentence).join(" "), 32)
      const full = reference(rows, asked, 100)
      for (const limit of [1, 5, 20, 100]) expectSameRanking(texts(index.search(asked, limit, ALL)), Object.assign(full.slice(0, limit), { scoreOf: full.scoreOf }))
    }
    expect(index.highWater).toBe(600)
  })

  it("ranks rewritten rows by what they hold now: a replaced text leaves the index, and its statistics", () => {
    const rows = rowsOf(300, 16)
    const index = indexOf(rows, 16)
    // Every third row gets a new text (same id, same time): the index must forget the old terms.
    const rewritten = rows.map((r, i) => {
      if (i % 3 !== 0) return r
      const text = `${sentence()} rewritten`
      return { ...r, text, vector: featureHashingVector(text, 16), terms: terms(text) }
    })
    rewritten.forEach((r, i) => i % 3 === 0 && index.upsert({ id: r.id, text: r.text, ts: r.ts, metadata: {}, seq: 300 + i }, r.vector, r.terms))
    for (const text of ["rewritten deploy", rows[3]!.text, `${rows[1]!.text} cache`]) {
      const asked = question(text, 16)
      expectSameRanking(texts(index.search(asked, 30, ALL)), reference(rewritten, asked, 30))
    }
  })

  it("never returns an excluded entry, and the excluded still lend their score to their neighbours", () => {
    const rows = rowsOf(200, 16)
    const index = indexOf(rows, 16)
    const asked = question(`${rows[50]!.text} ${rows[120]!.text}`, 16)
    const all = index.search(asked, 200, ALL)
    const excluded = new Set([all[0]!.id!, all[1]!.id!])
    const rest = index.search(asked, 200, ALL, excluded)
    expect(rest.some((e) => excluded.has(e.id!))).toBe(false)
    expectSameRanking(texts(rest), reference(rows, asked, 200, (r) => !excluded.has(r.id)))
  })

  it("finds a turn by the talk around it: a neighbour of a match scores, a row far from any match does not", () => {
    const put = (index: WarmIndex, id: string, ts: number, text: string) => index.upsert({ id, text, ts, metadata: {}, seq: ts }, featureHashingVector(text, 16), terms(text))
    const index = new WarmIndex(16)
    put(index, "q", 1, "did you go to the pottery class")
    put(index, "a", 2, "yes, on Saturday")
    put(index, "far1", 3, "unrelated words here")
    put(index, "far2", 4, "more unrelated chatter")
    put(index, "far3", 5, "the weather was fine")
    const found = index.search({ terms: terms("pottery class"), vectors: [], key: "pottery" }, 10, ALL)
    expect(found.map((e) => e.id)).toEqual(["q", "a", "far1"])
  })

  it("keeps the time order through writes between reads: new rows, rewritten rows moved in time, ties by id", () => {
    const index = new WarmIndex(8)
    const held = new Map<string, number>()
    let seq = 0
    const put = (id: string, ts: number) => {
      held.set(id, ts)
      index.upsert({ id, text: `text ${id}`, ts, metadata: {}, seq: ++seq }, featureHashingVector(`text ${id}`, 8), terms(`text ${id}`))
    }
    const newestFirst = () =>
      [...held].sort(([a, ta], [b, tb]) => tb - ta || (b > a ? 1 : b < a ? -1 : 0)).map(([id]) => `text ${id}`)
    for (let round = 0; round < 40; round++) {
      // Each round: a few new rows and a few rewrites (older, newer or the same time), ties on purpose.
      for (let k = 0; k < 1 + (round % 7); k++) put(`n${round}-${k}`, Math.floor(random() * 50))
      for (let k = 0; k < round % 4 && held.size > 0; k++) put([...held.keys()][Math.floor(random() * held.size)]!, Math.floor(random() * 50))
      if (round % 3 === 0) index.settle()
      expect(texts(index.recent(held.size, ALL))).toEqual(newestFirst())
    }
  })

  it("filters by equality, images in any case, and orders recent entries by time then id, newest first", () => {
    const index = new WarmIndex(16)
    const put = (id: string, ts: number, metadata: Record<string, unknown>, seq: number) =>
      index.upsert({ id, text: `text ${id}`, ts, metadata, seq }, featureHashingVector(`text ${id}`, 16), terms(`text ${id}`))
    put("a", 1, { user: "u1", type: "IMAGE" }, 1)
    put("b", 2, { user: "u2", type: "chat" }, 2)
    put("c", 2, { user: "u1", type: "chat" }, 3)
    expect(texts(index.recent(10, ALL))).toEqual(["text c", "text b", "text a"])
    expect(texts(index.recent(10, filter({ user: "u1" })))).toEqual(["text c", "text a"])
    expect(texts(index.search(question("text a", 16), 10, filter({ type: "image" })))).toEqual(["text a"])
    put("a", 3, { user: "u2" }, 4) // replaced: newest now, no longer an image
    expect(index.size).toBe(3)
    expect(texts(index.recent(1, ALL))).toEqual(["text a"])
    expect(index.search(question("text a", 16), 10, filter({ type: "Image" }))).toEqual([])
  })
})

const Embedded = Layer.mergeAll(PgliteClient.layer({ dataDir: "memory://" }), Embedder.layerFeatureHashing({ dimensions: 64 }), StoreEvents.layerLocal)
const Stores = SqlStore.layer({ resultCache: false }).pipe(Layer.provideMerge(Embedded))

layer(Stores, { timeout: "60 seconds" })("warm managers on PGlite", (it) => {
  const seeded = (id: string, n: number) =>
    Effect.gen(function* () {
      const store = yield* SqlStore
      const descriptor = yield* store.registerSource(id)
      yield* (yield* store.open(id)).insert(corpus(n))
      return { store, descriptor }
    })

  it.effect("answer every query as the SQL statements do: text, images, filters, recent", () =>
    Effect.gen(function* () {
      const { store, descriptor } = yield* seeded("same", 400)
      const warm = yield* store.openDescriptor(descriptor, { warmBytes: 1 << 30 })
      const sql = yield* store.openDescriptor(descriptor, { warmBytes: 0 })
      expect(warm.weight?.()).toBeGreaterThan(400 * 64 * 4)
      expect(sql.weight).toBeUndefined()
      const filters: Array<Where | undefined> = [undefined, { type: "image" }, { user: "u1" }, { user: "u2", type: "IMAGE" }, { type: "chat" }]
      for (let q = 0; q < 12; q++) {
        const seeds = Array.from({ length: 1 + (q % 4) }, sentence)
        for (const where of filters) {
          expect(texts(yield* warm.getMostRelevant(seeds, 20, where))).toEqual(texts(yield* sql.getMostRelevant(seeds, 20, where)))
        }
      }
      for (const where of filters) expect(yield* warm.getMostRecent(15, where)).toEqual(yield* sql.getMostRecent(15, where))
    }))

  it.effect("see a write made through the library at once, and one made behind its back after refresh", () =>
    Effect.gen(function* () {
      const { store, descriptor } = yield* seeded("current", 50)
      const warm = yield* store.openDescriptor(descriptor, { warmBytes: 1 << 30 })
      yield* (yield* store.open("current")).insert([{ id: "new", text: "written through another manager", timestamp: 1_800_000_000_000, metadata: {} }])
      expect(texts(yield* warm.getMostRecent(1))).toEqual(["written through another manager"])
      yield* warm.insert([{ id: "own", text: "written through the warm manager", timestamp: 1_800_000_000_001, metadata: {} }])
      expect(texts(yield* warm.getMostRecent(1))).toEqual(["written through the warm manager"])
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO ${sql(entriesTable(descriptor.storage))} (id, text, ts, metadata) VALUES ('behind', 'written behind its back', 1800000000002, '{}')`
      expect(texts(yield* warm.getMostRecent(1))).toEqual(["written through the warm manager"])
      yield* warm.refresh!
      expect(texts(yield* warm.getMostRecent(1))).toEqual(["written behind its back"])
      // An update behind its back gets a new seq (a trigger) and is seen too.
      yield* sql`UPDATE ${sql(entriesTable(descriptor.storage))} SET text = 'updated behind its back' WHERE id = 'behind'`
      yield* warm.refresh!
      expect(texts(yield* warm.getMostRecent(1))).toEqual(["updated behind its back"])
    }))

  it.effect("read a large source in the background, answering from SQL until it is in memory", () =>
    Effect.gen(function* () {
      const { descriptor } = yield* seeded("background", 300)
      // A second store on the same database that reads anything above 1 KB in the background.
      const store = yield* Effect.map(Layer.build(SqlStore.layer({ resultCache: false, backgroundLoadBytes: 1024 })), Context.get(SqlStore))
      const manager = yield* store.openDescriptor(descriptor, { warmBytes: 1 << 30 })
      const first = yield* manager.getMostRecent(3)
      expect(first).toHaveLength(3)
      const estimate = manager.weight!()
      // Let the event loop turn (the background read is I/O) until it is done; bounded, no clock involved.
      for (let i = 0; i < 10_000 && manager.weight!() === estimate; i++) yield* Effect.promise(() => new Promise((r) => setImmediate(r)))
      expect(manager.weight!()).not.toBe(estimate) // in memory now: weighed by what it holds
      expect(yield* manager.getMostRecent(3)).toEqual(first)
    }).pipe(Effect.scoped))

  it.effect("serve a source from SQL when it would take more than half of the budget", () =>
    Effect.gen(function* () {
      const { store, descriptor } = yield* seeded("large", 100)
      const small = yield* store.openDescriptor(descriptor, { warmBytes: 10_000 })
      expect(small.weight).toBeUndefined()
      expect(texts(yield* small.getMostRecent(1))).toHaveLength(1)
    }))
})

layer(SqlStore.layer().pipe(Layer.provideMerge(Embedded)), { timeout: "60 seconds" })("the store-query counter", (it) => {
  const count = (served: "warm" | "sql") => Effect.map(Metric.value(Metric.tagged(M.storeQueries, "served", served)), (c) => c.count)

  it.effect("counts the queries a store runs, by where they are served; a result-cache hit is not one", () =>
    Effect.gen(function* () {
      const store = yield* SqlStore
      const descriptor = yield* store.registerSource("counted")
      yield* (yield* store.open("counted")).insert(corpus(30))
      const warm = yield* store.openDescriptor(descriptor, { warmBytes: 1 << 30 })
      const fromSql = yield* store.openDescriptor(descriptor)
      expect(warm.weight).toBeDefined()
      expect(fromSql.weight).toBeUndefined()
      const [warmBefore, sqlBefore] = [yield* count("warm"), yield* count("sql")]
      for (let i = 0; i < 2; i++) {
        yield* warm.getMostRelevant(["database migration"], 5)
        yield* fromSql.getMostRecent(5)
      }
      expect((yield* count("warm")) - warmBefore).toBe(1)
      expect((yield* count("sql")) - sqlBefore).toBe(1)
    }))
})

describe("in the manager cache", () => {
  const live = (cache: object) =>
    PersistenceAdapterLive({ cache: { ttl: "60 seconds", refreshAhead: 1, ...cache } }).pipe(
      Layer.provideMerge(SqlStore.backend),
      Layer.provideMerge(Stores)
    )

  it.scoped("a TTL reload catches up with writes behind the library's back without reopening the source", () =>
    Effect.gen(function* () {
      const store = yield* SqlStore
      const descriptor = yield* store.registerSource("ttl")
      yield* (yield* store.open("ttl")).insert(corpus(20))
      const compile = Effect.flatMap(ContextCompiler, (c) => c.compile({ sources: [{ id: "ttl" }], recentLimit: 1, limit: 1 }))
      const before = yield* compile
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO ${sql(entriesTable(descriptor.storage))} (id, text, ts, metadata) VALUES ('late', 'a late entry', 1900000000000, '{}')`
      expect(yield* compile).toEqual(before)
      yield* TestClock.adjust("60 seconds")
      yield* compile // the reload: refresh, not a new open
      const after = yield* compile
      expect(after.at(-1)?.content).toContain("a late entry")
      const stats = yield* (yield* ManagerCache).stats
      expect(stats.refreshes).toBe(1)
      expect(stats.loads).toBe(2)
    }).pipe(Effect.provide(live({}))))

  it.scoped("holds at most warmBytes in warm managers", () =>
    Effect.gen(function* () {
      const store = yield* SqlStore
      for (let s = 0; s < 6; s++) {
        yield* store.registerSource(`budget${s}`)
        yield* (yield* store.open(`budget${s}`)).insert(corpus(150))
      }
      const cache = yield* ManagerCache
      yield* (yield* StoreManagerRegistry).catalog
      for (let round = 0; round < 3; round++) {
        for (let s = 0; s < 6; s++) {
          yield* cache.get(`budget${s}`)
          expect(yield* bytesHeld(cache)).toBeLessThanOrEqual(300_000)
        }
      }
      expect((yield* cache.stats).evictions).toBeGreaterThan(0)
    }).pipe(Effect.provide(live({ warmBytes: 300_000, capacity: 6 }))))
})

const db = await schemaForFile("warm")
const up = db.up

describe.skipIf(!up)("two instances on the PostgreSQL server", () => {
  it("a write on one is in the other's next compile after the notification", async () => {
    const channel = `pantheon_warm_${Math.random().toString(36).slice(2, 8)}`
    const instance = () =>
      ManagedRuntime.make(
        PersistenceAdapterLive({ cache: { ttl: "10 minutes" } }).pipe(
          Layer.provideMerge(PostgresStoreLive({ url: db.url, channel, maxConnections: 4, resultCache: false, embedder: Embedder.layerFeatureHashing({ dimensions: 64 }) }))
        )
      )
    const a = instance()
    const b = instance()
    try {
      await a.runPromise(Effect.flatMap(SqlStore, (s) => Effect.flatMap(s.registerSource("shared"), () => Effect.flatMap(s.open("shared"), (m) => m.insert(corpus(30))))))
      const compileOnB = () => b.runPromise(Effect.flatMap(ContextCompiler, (c) => c.compile({ sources: [{ id: "shared" }], recentLimit: 1, limit: 1 })))
      await compileOnB()
      const manager = await b.runPromise(Effect.flatMap(ManagerCache, (c) => c.get("shared")))
      expect(manager.weight).toBeDefined() // B holds the source warm
      await a.runPromise(Effect.flatMap(ManagerCache, (c) => Effect.flatMap(c.get("shared"), (m) => m.insert([{ id: "from-a", text: "written on instance A", timestamp: 2_000_000_000_000, metadata: {} }]))))
      const deadline = Date.now() + 5000
      let last = await compileOnB()
      while (!last.at(-1)?.content.includes("written on instance A") && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10))
        last = await compileOnB()
      }
      expect(last.at(-1)?.content).toContain("written on instance A")
      expect((await b.runPromise(Effect.flatMap(ManagerCache, (c) => c.stats))).loads).toBe(1) // caught up, not reopened
    } finally {
      await Promise.all([a.dispose(), b.dispose()])
    }
  }, 60_000)
})
