/**
 * w7: novel compiles. Every compile brings a question of its own (the query-result cache cannot
 * help, and is off), over 4 sources of 200, 2,000 and 20,000 entries, on PGlite and on the
 * PostgreSQL server. Rows: `ours` (warm managers), `floor` (plain loops over Float32Arrays, same
 * output: bench/lib/floor.ts) and `sqlOnly` (every source served by SQL: `warmBytes: 0`).
 * Figures: p50Ms, p99Ms of a compile; textRecall and imageRecall@20 of each source's relevance
 * queries against the exact answer; loadMs to open one source's manager; rssMb of the process.
 * `W7_ONLY=pglite:200,postgres:2000` measures only those (for profiling; the figures of the others
 * in latest.json are kept).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Layer, ManagedRuntime } from "effect"
import pg from "pg"
import { Embedder } from "../../src/embedding/Embedder.js"
import { featureHashingVector } from "../../src/embedding/hashing.js"
import { PersistenceAdapterLive } from "../../src/layers/PersistenceAdapterLive.js"
import { ContextCompiler } from "../../src/services/ContextCompiler.js"
import { ManagerCache } from "../../src/services/ManagerCache.js"
import { StoreEvents } from "../../src/services/StoreEvents.js"
import { StoreManagerRegistry } from "../../src/services/StoreManagerRegistry.js"
import type { SqlSourceDescriptor } from "../../src/stores/sql/catalog.js"
import { PgliteClient } from "../../src/stores/sql/PgliteClient.js"
import * as PgStoreEvents from "../../src/stores/sql/PgStoreEvents.js"
import { SqlStore } from "../../src/stores/sql/SqlStore.js"
import { entriesTable } from "../../src/stores/sql/storage.js"
import { parseVector } from "../../src/stores/sql/vectorText.js"
import { searchEngine } from "../../src/stores/sql/warm/ExactSearch.js"
import { type FloorSource, floorCompile, floorQuestion, floorSource, rank } from "../lib/floor.js"
import { readLatest, results, table } from "../lib/report.js"
import { percentile, prng, round } from "../lib/workload.js"
import { sampleEntries } from "./w1.js"
import { databaseUrl } from "./w6.js"

const DIMS = 256
const SOURCES = 4
const SIZES = [200, 2000, 20_000] as const
/** The SQL store's default `backgroundLoadBytes`: a source estimated above it is read in the background. */
const BACKGROUND_READ_BYTES = 8 * 1024 * 1024

/** A corpus of `n` entries a source: sample sentences recombined, one in ten an image with a caption. */
export const corpus = (source: number, n: number) => {
  const random = prng(1000 + source)
  const words = sampleEntries().flatMap((e) => e.text.split(/\s+/))
  const sentence = (k: number) => Array.from({ length: k }, () => words[Math.floor(random() * words.length)]).join(" ")
  return Array.from({ length: n }, (_, i) => {
    const image = i % 10 === 0
    return {
      id: `s${source}-${i}`,
      text: image ? `https://img.example/${source}/${i}.png` : sentence(6 + Math.floor(random() * 14)),
      timestamp: 1_700_000_000_000 + i * 1000,
      metadata: { displayName: `user${i % 9}`, ...(image ? { type: "image", caption: sentence(5) } : { type: "chat" }) }
    }
  })
}

const questions = (n: number, seed: number) => {
  const random = prng(seed)
  const words = sampleEntries().flatMap((e) => e.text.split(/\s+/))
  return Array.from({ length: n }, (_, i) => `${Array.from({ length: 6 + (i % 6) }, () => words[Math.floor(random() * words.length)]).join(" ")}?`)
}

/** Reads a source as the floor holds it: every row's vector parsed from the database. */
const readFloor = (sql: SqlClient.SqlClient, d: SqlSourceDescriptor) =>
  Effect.map(
    sql<{ id: string; text: string; ts: unknown; metadata: Record<string, unknown>; vector: string }>`SELECT id, text, ts, metadata, embedding::text AS vector FROM ${sql(entriesTable(d.storage))}`,
    (rows) =>
      floorSource(
        rows.map((r) => {
          const vector = new Float32Array(DIMS)
          parseVector(r.vector, vector, 0)
          return { id: r.id, text: r.text, ts: Number(r.ts), metadata: r.metadata, vector }
        }),
        DIMS
      )
  )

/**
 * Resolves once a manager answers from memory: at once unless it weighs its background estimate
 * (only a source above the store's background threshold is still being read); 120 s at most.
 */
const inMemory = async (manager: { readonly weight?: () => number }) => {
  const estimate = manager.weight?.()
  if (estimate === undefined || estimate <= BACKGROUND_READ_BYTES) return
  const started = performance.now()
  while (manager.weight!() === estimate && performance.now() - started < 120_000) await new Promise((r) => setTimeout(r, 5))
}

const rssMb = () => round(process.memoryUsage().rss / 1024 / 1024, 0)
const recall = (got: ReadonlyArray<{ text: unknown }>, exact: ReadonlyArray<{ text: unknown }>) => {
  if (exact.length === 0) return 1
  const want = new Set(exact.map((e) => e.text))
  return got.filter((e) => want.has(e.text)).length / exact.length
}

type Backend = Layer.Layer<SqlStore | SqlClient.SqlClient | StoreEvents | Embedder, unknown>

/** One backend, one size: ingest, then the three rows. */
const measure = (backend: Backend, size: number) =>
  Effect.gen(function* () {
    const store = yield* SqlStore
    const sql = yield* SqlClient.SqlClient
    const ingestStarted = performance.now()
    for (let s = 0; s < SOURCES; s++) {
      yield* store.registerSource(`w7s${s}`)
      const writer = yield* store.open(`w7s${s}`)
      const entries = corpus(s, size)
      for (let i = 0; i < entries.length; i += 2000) yield* writer.insert(entries.slice(i, i + 2000))
    }
    const ingestMs = performance.now() - ingestStarted
    const descriptors = (yield* store.catalog).filter((d) => d.id.startsWith("w7s"))
    const sources = descriptors.map((d) => ({ id: d.id }))
    const compiles = size >= 20_000 ? 40 : 100
    const asked = questions(compiles + 10, size)
    const embed = (text: string) => featureHashingVector(text, DIMS)

    // floor
    const floor: Array<FloorSource> = []
    const loadStarted = performance.now()
    floor.push(yield* readFloor(sql, descriptors[0]!))
    const floorLoadMs = performance.now() - loadStarted
    for (const d of descriptors.slice(1)) floor.push(yield* readFloor(sql, d))
    const floorTimes: Array<number> = []
    for (const [i, text] of asked.entries()) {
      const t0 = performance.now()
      floorCompile(floor, [text], embed)
      if (i >= 10) floorTimes.push(performance.now() - t0)
    }
    const rows: Record<string, Record<string, number>> = {
      floor: { p50Ms: round(percentile(floorTimes, 50)), p99Ms: round(percentile(floorTimes, 99)), textRecall: 1, imageRecall: 1, loadMs: round(floorLoadMs, 1), rssMb: rssMb() }
    }

    for (const [name, warmBytes, n] of [["ours", 256 * 1024 * 1024, compiles], ["sqlOnly", 0, size >= 20_000 ? 10 : compiles]] as const) {
      const runtime = ManagedRuntime.make(
        PersistenceAdapterLive({ cache: { ttl: "1 hour", warmBytes, queryTimeout: "60 seconds" } }).pipe(
          Layer.provideMerge(SqlStore.backend),
          Layer.provideMerge(Layer.succeed(SqlStore, store)),
          Layer.provideMerge(Layer.succeed(SqlClient.SqlClient, sql)),
          Layer.provideMerge(Layer.succeed(StoreEvents, yield* StoreEvents)),
          Layer.provideMerge(Layer.succeed(Embedder, yield* Embedder))
        )
      )
      yield* Effect.promise(() => runtime.runPromise(Effect.flatMap(StoreManagerRegistry, (r) => r.catalog)))
      const t0 = performance.now()
      const first = yield* Effect.promise(() => runtime.runPromise(Effect.flatMap(ManagerCache, (c) => c.get(descriptors[0]!.id))))
      const loadMs = performance.now() - t0
      // A large source is read in the background: how long until it answers from memory.
      yield* Effect.promise(() => inMemory(first))
      const warmMs = performance.now() - t0
      // The other sources too: the row measures compiles answered from memory (a large source is read
      // in pages between SQL-served compiles, which would otherwise be timed instead).
      for (const d of descriptors.slice(1)) {
        yield* Effect.promise(async () => inMemory(await runtime.runPromise(Effect.flatMap(ManagerCache, (c) => c.get(d.id)))))
      }
      const times: Array<number> = []
      for (const [i, text] of asked.slice(0, n + 10).entries()) {
        const started = performance.now()
        yield* Effect.promise(() => runtime.runPromise(Effect.flatMap(ContextCompiler, (c) => c.compile({ sources, texts: [text], onSourceError: "fail" }))))
        if (i >= 10) times.push(performance.now() - started)
      }
      // Recall of each source's two relevance queries against the exact answer, on 10 questions.
      let text = 0
      let image = 0
      let count = 0
      for (const question of asked.slice(0, 10)) {
        for (const [s, d] of descriptors.entries()) {
          const manager = yield* Effect.promise(() => runtime.runPromise(Effect.flatMap(ManagerCache, (c) => c.get(d.id))))
          const asked = floorQuestion([question], embed)
          text += recall(yield* manager.getMostRelevant([question], 20), rank(floor[s]!, asked, 20))
          image += recall(yield* manager.getMostRelevant([question], 20, { type: "image" }), rank(floor[s]!, asked, 20, (r) => floor[s]!.isImage[r]!))
          count++
        }
      }
      rows[name] = {
        p50Ms: round(percentile(times, 50)),
        p99Ms: round(percentile(times, 99)),
        textRecall: round(text / count, 4),
        imageRecall: round(image / count, 4),
        loadMs: round(loadMs, 1),
        ...(first.weight === undefined ? {} : { warmMs: round(warmMs, 1) }),
        rssMb: rssMb(),
        ...(first.weight === undefined ? {} : { bytesPerEntry: round(first.weight() / size, 0) })
      }
      yield* Effect.promise(() => runtime.dispose())
    }
    return { rows, ingestMs: round(ingestMs, 0) }
  }).pipe(Effect.provide(backend), Effect.scoped)

/** The figures just measured over the last run's (a partial run keeps the rest). */
const mergeMeasured = (out: Record<string, Record<string, unknown>>) => {
  const previous = (readLatest().w7 ?? {}) as Record<string, Record<string, unknown>>
  return {
    ...previous,
    pglite: { ...previous.pglite, ...out.pglite },
    postgres: { ...previous.postgres, ...out.postgres },
    searchEngine: searchEngine()
  }
}

export const w7 = async () => {
  const out: Record<string, Record<string, unknown>> = { pglite: {}, postgres: {} }
  const display: Array<Record<string, unknown>> = []
  const backends: Array<[string, () => Promise<{ layer: Backend; cleanup: () => Promise<void> } | undefined>]> = [
    [
      "pglite",
      async () => ({
        layer: SqlStore.layer({ resultCache: false }).pipe(
          Layer.provideMerge(Layer.mergeAll(PgliteClient.layer({ dataDir: "memory://" }), Embedder.layerFeatureHashing({ dimensions: DIMS }), StoreEvents.layerLocal))
        ) as Backend,
        cleanup: async () => {}
      })
    ],
    [
      "postgres",
      async () => {
        const admin = new pg.Client({ connectionString: databaseUrl })
        try {
          await admin.connect()
        } catch (e) {
          console.log(`### w7 postgres: skipped, ${databaseUrl} is unreachable (${(e as Error).message})\n`)
          return undefined
        }
        const schema = `bench_w7_${Math.random().toString(36).slice(2, 8)}`
        await admin.query(`CREATE SCHEMA ${schema}`)
        const url = new URL(databaseUrl)
        url.searchParams.set("options", `-c search_path=${schema}`)
        const { PgClient } = await import("@effect/sql-pg")
        const { Redacted } = await import("effect")
        const client = PgClient.layer({ url: Redacted.make(url.toString()), maxConnections: 9 })
        const layer = SqlStore.layer({ resultCache: false }).pipe(
          Layer.provideMerge(PgStoreEvents.layer({ url: Redacted.make(url.toString()), channel: schema })),
          Layer.provideMerge(Layer.merge(client, Embedder.layerFeatureHashing({ dimensions: DIMS })))
        ) as Backend
        return {
          layer,
          cleanup: async () => {
            await admin.query(`DROP SCHEMA ${schema} CASCADE`)
            await admin.end()
          }
        }
      }
    ]
  ]
  const only = process.env.W7_ONLY?.split(",")
  for (const [name, make] of backends) {
    for (const size of SIZES) {
      if (only !== undefined && !only.includes(`${name}:${size}`)) continue
      const backend = await make()
      if (backend === undefined) break
      try {
        const { rows, ingestMs } = await Effect.runPromise(measure(backend.layer, size))
        out[name]![size] = { ...rows, ingestMs }
        for (const [row, figures] of Object.entries(rows)) display.push({ backend: name, entries: size, row, ...figures })
        console.log(`w7 ${name} ${size}: ingested 4 × ${size} entries in ${ingestMs} ms`)
      } finally {
        await backend.cleanup()
      }
    }
  }
  results.w7 = only === undefined ? { ...out, searchEngine: searchEngine() } : mergeMeasured(out)
  table(`w7: novel compiles over 4 sources (result cache off; in-memory search: ${searchEngine()})`, display)
}
