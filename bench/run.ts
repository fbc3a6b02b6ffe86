/**
 * npm run bench: the workloads of issue #2 (w1–w5), a markdown table on stdout, every figure in
 * bench/results/latest.json. Run with --expose-gc (the npm script does) for the memory rows.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Cache, Effect, Either, Layer, ManagedRuntime, Runtime, Stream } from "effect"
import pg from "pg"
import { PostgresStoreLive } from "../src/layers/PostgresStoreLive.js"
import { StoreManagerRegistry } from "../src/services/StoreManagerRegistry.js"
import { SqlStore } from "../src/stores/sql/SqlStore.js"
import { readdirSync, readFileSync } from "node:fs"
import type { NewEntry } from "../src/domain/schemas.js"
import { PersistenceAdapterLive } from "../src/layers/PersistenceAdapterLive.js"
import { ContextCompiler } from "../src/services/ContextCompiler.js"
import { Embedder, featureHashing, layerFeatureHashing } from "../src/services/Embedder.js"
import { ManagerCache } from "../src/services/ManagerCache.js"
import * as Pglite from "../src/stores/sql/PgliteClient.js"
import * as Sql from "../src/stores/sql/SqlStore.js"
import { LRUCache } from "lru-cache"
import { existsSync, mkdirSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { decodeCacheConfig } from "../src/domain/config.js"
import { makePantheonPersistenceAdapter } from "../src/legacy/index.js"
import { make as makeManagerCache } from "../src/services/ManagerCache.js"
import type { StoreManager } from "../src/services/StoreManager.js"
import type { DualStoreManagerLike, LegacyEntry } from "../src/stores/legacy.js"
import { sketchAdapter, uncachedAdapter } from "./lib/baselines.js"
import { percentile, prng, round, zipf, zipfTopMass } from "./lib/workload.js"

const results: Record<string, unknown> = { startedAt: new Date().toISOString(), node: process.version }
const tables: Array<string> = []
const table = (title: string, rows: Array<Record<string, unknown>>) => {
  const cols = Object.keys(rows[0]!)
  tables.push(
    [`### ${title}`, "", `| ${cols.join(" | ")} |`, `| ${cols.map(() => "---").join(" | ")} |`, ...rows.map((r) => `| ${cols.map((c) => String(r[c])).join(" | ")} |`), ""].join("\n")
  )
  console.log(tables.at(-1))
}
const SAMPLE_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "data", "sample")
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const cfg = (input: object) => Either.getOrThrow(decodeCacheConfig(input))

// ---------------------------------------------------------------------------------------------
// w1: 1,000 compiles over 1–4 of 16 sources (Zipf-weighted, random order)
const SOURCES = 16
const OPEN_MS = 5
const fakeEntries = (source: string, n: number, offset: number) =>
  Array.from({ length: n }, (_, i) => ({
    id: `${source}-${i + offset}`,
    text: `${source} message ${i + offset}`,
    timestamp: 1_700_000_000_000 + (i + offset) * 1000,
    metadata: { displayName: i % 3 === 0 ? "Pantheon" : `user${i % 5}`, type: "chat" }
  }))

/** Opening the 16 managers as the Pantheon adapter does: each open costs OPEN_MS (run in parallel). */
const makeGetStoreManagers = () => {
  const counter = { calls: 0 }
  const getStoreManagers = async (): Promise<Array<DualStoreManagerLike>> => {
    counter.calls++
    return Promise.all(
      Array.from({ length: SOURCES }, async (_, s) => {
        await sleep(OPEN_MS)
        const name = `source-${s}`
        const recent = fakeEntries(name, 10, 0).reverse()
        const relevant = fakeEntries(name, 5, 100)
        return {
          name,
          getMostRecent: async (limit = 10) => recent.slice(0, limit),
          getMostRelevant: async (_q: ReadonlyArray<string>, limit: number, where?: Record<string, unknown>) =>
            where?.type === "image" ? [] : relevant.slice(0, limit)
        }
      })
    )
  }
  return { counter, getStoreManagers }
}

const w1Requests = (() => {
  const random = prng(42)
  const pick = zipf(SOURCES, 1.0, random)
  return Array.from({ length: 1000 }, (_, i) => {
    const k = 1 + Math.floor(random() * 4)
    const chosen = new Set<number>()
    while (chosen.size < k) chosen.add(pick())
    return { texts: [`question ${i % 50}`], sources: [...chosen].map((s) => ({ id: `source-${s}` })) }
  })
})()

const runW1 = async (name: string, adapter: { compile: (o: any) => Promise<unknown> }, calls: { calls: number }, hitRate: () => Promise<number> | number) => {
  const times: Array<number> = []
  const start = performance.now()
  for (const request of w1Requests) {
    const t0 = performance.now()
    await adapter.compile(request)
    times.push(performance.now() - t0)
  }
  const totalMs = performance.now() - start
  return { row: name, storeManagerCalls: calls.calls, hitRate: round(await hitRate(), 4), p50Ms: round(percentile(times, 50)), p99Ms: round(percentile(times, 99)), totalMs: round(totalMs, 1) }
}

const w1 = async () => {
  const rows = []
  {
    const { counter, getStoreManagers } = makeGetStoreManagers()
    rows.push(await runW1("uncached", uncachedAdapter(getStoreManagers), counter, () => 0))
  }
  {
    const { counter, getStoreManagers } = makeGetStoreManagers()
    const sketch = sketchAdapter(getStoreManagers)
    rows.push(await runW1("sketch", sketch, counter, () => sketch.hitRate()))
  }
  {
    const { counter, getStoreManagers } = makeGetStoreManagers()
    const ours = makePantheonPersistenceAdapter({ getStoreManagers }, { ttl: 60_000, maxSize: 64 })
    rows.push(await runW1("ours", ours, counter, async () => (await ours.cacheStats()).hitRate))
    await ours.dispose()
  }
  results.w1 = Object.fromEntries(rows.map((r) => [r.row, r]))
  table("w1: 1,000 compiles over 1–4 of 16 sources (getStoreManagers opens 16 managers, 5 ms each)", rows)
}

// ---------------------------------------------------------------------------------------------
// w1 on the real embedded store: 16 PGlite sources of 200 entries; the same 1,000 requests
const w1Real = async () => {
  const entries = readdirSync(SAMPLE_DIR)
    .filter((f) => f.endsWith(".jsonl"))
    .flatMap((f) => readFileSync(join(SAMPLE_DIR, f), "utf8").trim().split("\n").map((l) => JSON.parse(l) as NewEntry))
  // Two stores on one database: ours embeds through the cache, the uncached path (like the Pantheon
  // adapter) builds a new manager and embeds every seed on every compile.
  const uncachedModel = featureHashing(256)
  const database = Layer.merge(Pglite.layer({ dataDir: "memory://" }), layerFeatureHashing({ dimensions: 256 }))
  const program = Effect.gen(function* () {
    const store = yield* Sql.SqlStore
    const sql = yield* SqlClient.SqlClient
    for (let s = 0; s < SOURCES; s++) {
      const id = `source-${s}`
      yield* store.registerSource(id)
      const manager = yield* store.open(id)
      yield* manager.insert(Array.from({ length: 200 }, (_, i) => ({ ...entries[(i * 7 + s * 13) % entries.length]!, id: `${id}-${i}` })))
    }
    yield* sql`ANALYZE`
    const uncachedStore = yield* Sql.make({ resultCache: false }).pipe(Effect.provideService(Embedder, uncachedModel))
    const noResultCacheStore = yield* Sql.make({ resultCache: false })
    const rows = []
    {
      // uncachedReal: every compile opens its matched managers anew.
      let opens = 0
      const runtime = yield* Effect.runtime<never>()
      const compile = async (request: (typeof w1Requests)[number]) => {
        const managers = await Promise.all(
          request.sources.map((s) =>
            Runtime.runPromise(runtime)(uncachedStore.open(s.id)).then((m) => {
              opens++
              return asPromiseManager(m, runtime)
            })
          )
        )
        return uncachedAdapter(async () => managers).compile(request)
      }
      const before = yield* uncachedModel.stats
      const row = yield* Effect.promise(() => runW1("uncachedReal", { compile }, { get calls() { return opens } }, () => 0))
      const after = yield* uncachedModel.stats
      rows.push({ ...row, embedCallsPerCompile: round((after.calls - before.calls) / w1Requests.length, 2) })
    }
    // ours, with and without the query-result cache of the SQL store (the manager cache is on in both).
    for (const [name, sqlStore] of [["oursReal", store], ["oursRealNoResultCache", noResultCacheStore]] as const) {
      const layer = PersistenceAdapterLive({ cache: { ttl: "10 minutes", capacity: 64 } }).pipe(Layer.provide(Sql.backendLayer), Layer.provide(Layer.succeed(Sql.SqlStore, sqlStore)))
      const runtime = yield* Layer.toRuntime(layer)
      const compiler = Runtime.runSync(runtime)(ContextCompiler)
      const cache = Runtime.runSync(runtime)(ManagerCache)
      const embedder = yield* Embedder
      const before = yield* embedder.stats
      const row = yield* Effect.promise(() =>
        runW1(name, { compile: (r) => Runtime.runPromise(runtime)(compiler.compile(r)) }, { get calls() { return Runtime.runSync(runtime)(cache.stats).loads } }, () => Runtime.runSync(runtime)(cache.stats).hitRate)
      )
      const after = yield* embedder.stats
      rows.push({ ...row, embedCallsPerCompile: round((after.calls - before.calls) / w1Requests.length, 2) })
    }
    return rows
  }).pipe(Effect.scoped, Effect.provide(Sql.layer().pipe(Layer.provideMerge(database))))
  const rows = await Effect.runPromise(program)
  results.w1Real = Object.fromEntries(rows.map((r) => [r.row, r]))
  table("w1 on the embedded store: 16 PGlite sources × 200 entries (storeManagerCalls = manager opens)", rows)
}

/** A Promise view of an Effect manager, for the Pantheon-style baseline. */
const asPromiseManager = (m: StoreManager, runtime: Runtime.Runtime<never>): DualStoreManagerLike => ({
  name: m.name,
  getMostRecent: (limit = 10, where) => Runtime.runPromise(runtime)(m.getMostRecent(limit, where)) as Promise<Array<LegacyEntry>>,
  getMostRelevant: (queries, limit, where) => Runtime.runPromise(runtime)(m.getMostRelevant(queries, limit, where)) as Promise<Array<LegacyEntry>>
})

// ---------------------------------------------------------------------------------------------
// w2: 1,000 concurrent compiles on a cold cache
const w2 = async () => {
  const opens = new Map<string, number>()
  let catalogCalls = 0
  const managers = Array.from({ length: SOURCES }, (_, s) => `source-${s}`)
  const adapter = makePantheonPersistenceAdapter({
    getStoreManagers: async () => {
      catalogCalls++
      await sleep(OPEN_MS)
      return managers.map((name) => ({
        name,
        getMostRecent: async () => (opens.set(name, (opens.get(name) ?? 0) + 0), fakeEntries(name, 10, 0)),
        getMostRelevant: async () => []
      }))
    }
  })
  const start = performance.now()
  await Promise.all(w1Requests.map((r) => adapter.compile(r)))
  const elapsed = performance.now() - start
  const stats = await adapter.cacheStats()
  const sourcesUsed = new Set(w1Requests.flatMap((r) => r.sources.map((s) => s.id))).size
  await adapter.dispose()
  const row = { catalogReads: catalogCalls, managerLoads: stats.loads, sourcesUsed, loadsPerSource: round(stats.loads / sourcesUsed, 3), totalMs: round(elapsed, 1) }
  results.w2 = row
  table("w2: 1,000 concurrent compiles on a cold cache", [row])
}

// ---------------------------------------------------------------------------------------------
// w3: eviction quality, Zipf(1.0) over 1,000 ids, capacity 100, 200,000 gets
const w3 = async () => {
  const N = 1000
  const CAP = 100
  const GETS = 200_000
  const random = prng(7)
  const pick = zipf(N, 1.0, random)
  const trace = Array.from({ length: GETS }, () => `id-${pick()}`)
  const handle = (id: string) => ({ name: id }) as unknown as StoreManager

  const ours = await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const cache = yield* makeManagerCache(cfg({ capacity: CAP, ttl: "1 hour" }), (id) => Effect.succeed(handle(id)), "bench-w3")
        for (const id of trace) yield* cache.get(id)
        return (yield* cache.stats).hitRate
      })
    )
  )
  const effectCache = await Effect.runPromise(
    Effect.gen(function* () {
      const cache = yield* Cache.make({ capacity: CAP, timeToLive: "1 hour", lookup: (id: string) => Effect.succeed(handle(id)) })
      for (const id of trace) yield* cache.get(id)
      const s = yield* cache.cacheStats
      return s.hits / (s.hits + s.misses)
    })
  )
  const lru = new LRUCache<string, object>({ max: CAP })
  let lruHits = 0
  for (const id of trace) {
    if (lru.get(id) !== undefined) lruHits++
    else lru.set(id, handle(id))
  }
  const fifo = new Map<string, object>()
  let fifoHits = 0
  for (const id of trace) {
    if (fifo.has(id)) fifoHits++
    else {
      fifo.set(id, handle(id))
      if (fifo.size > CAP) fifo.delete(fifo.keys().next().value!)
    }
  }
  const row = { ours: round(ours, 4), effectCache: round(effectCache, 4), lru: round(lruHits / GETS, 4), fifo: round(fifoHits / GETS, 4), optimal: round(zipfTopMass(N, 1.0, CAP), 4) }
  results.w3 = row
  table("w3: hit rate, Zipf(1.0) over 1,000 ids, capacity 100, 200,000 gets", [row])
}

// ---------------------------------------------------------------------------------------------
// w4: the cost of a hit
const w4 = async () => {
  const N = 1_000_000
  const managerCacheHitNs = await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const cache = yield* makeManagerCache(cfg({ ttl: "1 hour" }), (id) => Effect.succeed({ name: id } as unknown as StoreManager), "bench-w4")
        yield* cache.get("warm")
        const loop = Effect.gen(function* () {
          for (let i = 0; i < N; i++) yield* cache.get("warm")
        })
        yield* loop // warm-up
        const t0 = performance.now()
        yield* loop
        return ((performance.now() - t0) * 1e6) / N
      })
    )
  )
  const adapter = makePantheonPersistenceAdapter({ getStoreManagers: async () => [{ name: "s", getMostRecent: async () => [], getMostRelevant: async () => [] }] })
  const request = { sources: [{ id: "s" }] }
  for (let i = 0; i < 5000; i++) await adapter.compile(request)
  const C = 50_000
  let t0 = performance.now()
  for (let i = 0; i < C; i++) await adapter.compile(request)
  const facadeCompileOverheadNs = ((performance.now() - t0) * 1e6) / C
  await adapter.dispose()
  const lru = new LRUCache<string, object>({ max: 100 })
  lru.set("warm", {})
  let sink = 0
  for (let i = 0; i < N; i++) sink += lru.get("warm") ? 1 : 0
  t0 = performance.now()
  for (let i = 0; i < N * 10; i++) sink += lru.get("warm") ? 1 : 0
  const lruGetNs = ((performance.now() - t0) * 1e6) / (N * 10)
  if (sink === 0) throw new Error("w4: lru-cache lost its entry")
  const row = { managerCacheHitNs: round(managerCacheHitNs, 1), facadeCompileOverheadNs: round(facadeCompileOverheadNs, 1), lruGetNs: round(lruGetNs, 2) }
  results.w4 = row
  table("w4: cost of a hit (ns)", [row])
}

// ---------------------------------------------------------------------------------------------
// w5: memory of the cache
const heap = () => {
  global.gc?.()
  global.gc?.()
  return process.memoryUsage().heapUsed
}
const w5 = async () => {
  if (!global.gc) console.warn("w5: run node with --expose-gc for exact figures")
  const handle = (id: string) => ({ name: id }) as unknown as StoreManager
  const heapBytesAt10k = await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const before = heap()
        const cache = yield* makeManagerCache(cfg({ capacity: 10_000, ttl: "1 hour" }), (id) => Effect.succeed(handle(id)), "bench-w5a")
        for (let i = 0; i < 10_000; i++) yield* cache.get(`source-${i}`)
        const after = heap()
        if ((yield* cache.stats).size !== 10_000) throw new Error("w5: the cache does not hold 10,000 entries")
        return after - before
      })
    )
  )
  const random = prng(99)
  const heapBytesAfterChurn = await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const before = heap()
        const cache = yield* makeManagerCache(cfg({ capacity: 10_000, ttl: "1 hour" }), (id) => Effect.succeed(handle(id)), "bench-w5b")
        for (let i = 0; i < 1_000_000; i++) yield* cache.get(`source-${Math.floor(random() * 100_000)}`)
        const after = heap()
        const stats = yield* cache.stats
        return { bytes: after - before, evictions: stats.evictions, size: stats.size }
      })
    )
  )
  // The road not taken: Effect's Cache holding the managers, with a better policy evicting through
  // `invalidate` (its own eviction loses to FIFO, w3). Its internal access list keeps every key it saw.
  const random2 = prng(99)
  const effectCacheInvalidateChurnBytes = await Effect.runPromise(
    Effect.gen(function* () {
      const before = heap()
      const cache = yield* Cache.make({ capacity: Number.MAX_SAFE_INTEGER, timeToLive: "1 hour", lookup: (id: string) => Effect.succeed(handle(id)) })
      const lru = new Map<string, true>()
      for (let i = 0; i < 1_000_000; i++) {
        const id = `source-${Math.floor(random2() * 100_000)}`
        if (lru.delete(id)) lru.set(id, true)
        else {
          lru.set(id, true)
          if (lru.size > 10_000) {
            const victim = lru.keys().next().value!
            lru.delete(victim)
            yield* cache.invalidate(victim)
          }
        }
        yield* cache.get(id)
      }
      const after = heap()
      if ((yield* cache.size) !== 10_000) throw new Error("w5: the Effect Cache variant does not hold 10,000 entries")
      return after - before
    })
  )
  const row = {
    heapBytesAt10k,
    heapBytesAfterChurn: heapBytesAfterChurn.bytes,
    churnEvictions: heapBytesAfterChurn.evictions,
    churnSize: heapBytesAfterChurn.size,
    effectCacheInvalidateChurnBytes
  }
  results.w5 = row
  table("w5: heap held by the cache (bytes)", [row])
}

// ---------------------------------------------------------------------------------------------
// w6: a change on one instance, seen by another (PostgreSQL LISTEN/NOTIFY)
const w6 = async () => {
  const base = process.env.PANTHEON_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"
  const admin = new pg.Client({ connectionString: base })
  try {
    await admin.connect()
  } catch (e) {
    console.log(`### w6: skipped, PostgreSQL at ${base} is unreachable (${(e as Error).message})\n`)
    results.w6 = { skipped: String(e) }
    return
  }
  const schema = `bench_w6_${Math.random().toString(36).slice(2, 8)}`
  await admin.query(`CREATE SCHEMA ${schema}`)
  const url = new URL(base)
  url.searchParams.set("options", `-c search_path=${schema}`)
  const app = `pantheon-bench-${schema}`
  const instance = () =>
    ManagedRuntime.make(
      PersistenceAdapterLive({ cache: { ttl: "10 minutes" } }).pipe(
        Layer.provideMerge(PostgresStoreLive({ url: url.toString(), channel: schema, applicationName: app, maxConnections: 10, embedder: layerFeatureHashing() }))
      )
    )
  const a = instance()
  const b = instance()
  try {
    const seen = new Map<string, number>()
    await b.runPromise(
      Effect.flatMap(StoreManagerRegistry, (r) =>
        Effect.forkDaemon(Stream.runForEach(r.changes, (c) => Effect.sync(() => "descriptor" in c && seen.set(`${c.id}:${c.descriptor.label}`, performance.now()))))
      )
    )
    await a.runPromise(Effect.flatMap(SqlStore, (s) => s.registerSource("w6", { label: "0" })))
    const latencies: Array<number> = []
    for (let i = 1; i <= 100; i++) {
      const t0 = performance.now()
      await a.runPromise(Effect.flatMap(SqlStore, (s) => s.registerSource("w6", { label: String(i) })))
      const key = `w6:${i}`
      while (!seen.has(key) && performance.now() - t0 < 5000) await sleep(0.2)
      latencies.push((seen.get(key) ?? Infinity) - t0)
    }
    const connections = Number((await admin.query("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1", [app])).rows[0].n)
    const row = { changes: latencies.length, p50Ms: round(percentile(latencies, 50)), p99Ms: round(percentile(latencies, 99)), maxMs: round(Math.max(...latencies)), connectionsOfTwoInstances: connections }
    results.w6 = row
    table("w6: propagation of a catalog change from instance A to instance B (PostgreSQL LISTEN/NOTIFY)", [row])
  } finally {
    await Promise.all([a.dispose(), b.dispose()])
    await admin.query(`DROP SCHEMA ${schema} CASCADE`)
    await admin.end()
  }
}

const only = process.argv.slice(2)
const all: Record<string, () => Promise<void>> = { w1, w1Real, w2, w3, w4, w5, w6 }
for (const [name, run] of Object.entries(all)) if (only.length === 0 || only.includes(name)) await run()

const out = join(dirname(fileURLToPath(import.meta.url)), "results", "latest.json")
mkdirSync(dirname(out), { recursive: true })
// A run of some workloads keeps the other workloads' last figures.
const previous = only.length > 0 && existsSync(out) ? (JSON.parse(readFileSync(out, "utf8")) as Record<string, unknown>) : {}
writeFileSync(out, JSON.stringify({ ...previous, ...results }, null, 2) + "\n")
console.log(`results written to ${out}`)
