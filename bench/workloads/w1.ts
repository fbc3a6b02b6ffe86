/**
 * w1: 1,000 compiles over 1–4 of 16 sources (Zipf-weighted), `getStoreManagers` opening 16 managers
 * at 5 ms each; w1Real: the same requests on 16 PGlite sources of 200 entries.
 */
import { Effect, Layer, Runtime } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import type { NewEntry } from "../../src/domain/schemas.js"
import { Embedder } from "../../src/embedding/Embedder.js"
import { featureHashing } from "../../src/embedding/hashing.js"
import { PersistenceAdapterLive } from "../../src/layers/PersistenceAdapterLive.js"
import { makePantheonPersistenceAdapter } from "../../src/promise/makePantheonPersistenceAdapter.js"
import { ContextCompiler } from "../../src/services/ContextCompiler.js"
import { ManagerCache } from "../../src/services/ManagerCache.js"
import type { StoreManager } from "../../src/services/StoreManager.js"
import { StoreEvents } from "../../src/services/StoreEvents.js"
import type { DualStoreManagerLike, PromiseEntry } from "../../src/stores/promise.js"
import { PgliteClient } from "../../src/stores/sql/PgliteClient.js"
import * as Sql from "../../src/stores/sql/SqlStore.js"
import { sketchAdapter, uncachedAdapter } from "../lib/baselines.js"
import { results, sleep, table } from "../lib/report.js"
import { percentile, prng, round, zipf } from "../lib/workload.js"

export const SOURCES = 16
export const OPEN_MS = 5
const SAMPLE_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "data", "sample")

export const fakeEntries = (source: string, n: number, offset: number) =>
  Array.from({ length: n }, (_, i) => ({
    id: `${source}-${i + offset}`,
    text: `${source} message ${i + offset}`,
    timestamp: 1_700_000_000_000 + (i + offset) * 1000,
    metadata: { displayName: i % 3 === 0 ? "Pantheon" : `user${i % 5}`, type: "chat" }
  }))

/** A caller's manager over fixed entries: its 10 newest, and 5 "relevant" ones (none for the image query). */
export const fakeManager = (name: string): DualStoreManagerLike => {
  const recent = fakeEntries(name, 10, 0).reverse()
  const relevant = fakeEntries(name, 5, 100)
  return {
    name,
    getMostRecent: async (limit = 10) => recent.slice(0, limit),
    getMostRelevant: async (_q, limit, where) => (where?.type === "image" ? [] : relevant.slice(0, limit))
  }
}

/** Opening the 16 managers as the Pantheon adapter does: each open costs OPEN_MS (run in parallel). */
const makeGetStoreManagers = () => {
  const counter = { calls: 0 }
  const getStoreManagers = async (): Promise<Array<DualStoreManagerLike>> => {
    counter.calls++
    return Promise.all(
      Array.from({ length: SOURCES }, async (_, s) => {
        await sleep(OPEN_MS)
        return fakeManager(`source-${s}`)
      })
    )
  }
  return { counter, getStoreManagers }
}

/** The 1,000 requests: 1–4 Zipf-weighted sources each; `novel` gives every compile a text of its own. */
export const w1Requests = (novel = false) => {
  const random = prng(42)
  const pick = zipf(SOURCES, 1.0, random)
  return Array.from({ length: 1000 }, (_, i) => {
    const k = 1 + Math.floor(random() * 4)
    const chosen = new Set<number>()
    while (chosen.size < k) chosen.add(pick())
    return { texts: [novel ? `question ${i} about deploy ${Math.floor(random() * 1e6)}` : `question ${i % 50}`], sources: [...chosen].map((s) => ({ id: `source-${s}` })) }
  })
}

export const runW1 = async (
  name: string,
  adapter: { compile: (o: any) => Promise<unknown> },
  calls: { calls: number },
  hitRate: () => Promise<number> | number,
  requests = w1Requests()
) => {
  const times: Array<number> = []
  const start = performance.now()
  for (const request of requests) {
    const t0 = performance.now()
    await adapter.compile(request)
    times.push(performance.now() - t0)
  }
  const totalMs = performance.now() - start
  return { row: name, storeManagerCalls: calls.calls, hitRate: round(await hitRate(), 4), p50Ms: round(percentile(times, 50)), p99Ms: round(percentile(times, 99)), totalMs: round(totalMs, 1) }
}

export const w1 = async () => {
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

/** A Promise view of an Effect manager, for the Pantheon-style baseline. */
const asPromiseManager = (m: StoreManager, runtime: Runtime.Runtime<never>): DualStoreManagerLike => ({
  name: m.name,
  getMostRecent: (limit = 10, where) => Runtime.runPromise(runtime)(m.getMostRecent(limit, where)) as Promise<Array<PromiseEntry>>,
  getMostRelevant: (queries, limit, where) => Runtime.runPromise(runtime)(m.getMostRelevant(queries, limit, where)) as Promise<Array<PromiseEntry>>
})

export const sampleEntries = () =>
  readdirSync(SAMPLE_DIR)
    .filter((f) => f.endsWith(".jsonl"))
    .flatMap((f) => readFileSync(join(SAMPLE_DIR, f), "utf8").trim().split("\n").map((l) => JSON.parse(l) as NewEntry))

export const w1Real = async () => {
  const entries = sampleEntries()
  // Two stores on one database: ours embeds through the cache, the uncached path (like the Pantheon
  // adapter) builds a new manager and embeds every seed on every compile.
  const uncachedModel = featureHashing(256)
  const database = Layer.mergeAll(PgliteClient.layer({ dataDir: "memory://" }), Embedder.layerFeatureHashing({ dimensions: 256 }), StoreEvents.layerLocal)
  const program = Effect.gen(function* () {
    const store = yield* Sql.SqlStore
    for (let s = 0; s < SOURCES; s++) {
      const id = `source-${s}`
      yield* store.registerSource(id)
      const manager = yield* store.open(id)
      yield* manager.insert(Array.from({ length: 200 }, (_, i) => ({ ...entries[(i * 7 + s * 13) % entries.length]!, id: `${id}-${i}` })))
    }
    const uncachedStore = yield* Sql.make({ resultCache: false }).pipe(Effect.provideService(Embedder, uncachedModel))
    const noResultCacheStore = yield* Sql.make({ resultCache: false })
    const rows = []
    {
      // uncachedReal: every compile opens its matched managers anew.
      let opens = 0
      const runtime = yield* Effect.runtime<never>()
      const compile = async (request: ReturnType<typeof w1Requests>[number]) => {
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
      rows.push({ ...row, embedCallsPerCompile: round((after.calls - before.calls) / 1000, 2) })
    }
    // ours, with and without the query-result cache of the SQL store (the manager cache is on in both).
    for (const [name, sqlStore, requests] of [
      ["oursReal", store, w1Requests()],
      ["oursRealNoResultCache", noResultCacheStore, w1Requests()],
      ["oursNovel", store, w1Requests(true)]
    ] as const) {
      const layer = PersistenceAdapterLive({ cache: { ttl: "10 minutes", capacity: 64 } }).pipe(
        Layer.provide(Sql.SqlStore.backend),
        Layer.provide(Layer.succeed(Sql.SqlStore, sqlStore)),
        Layer.provide(StoreEvents.layerLocal)
      )
      const runtime = yield* Layer.toRuntime(layer)
      const compiler = Runtime.runSync(runtime)(ContextCompiler)
      const cache = Runtime.runSync(runtime)(ManagerCache)
      const embedder = yield* Embedder
      const before = yield* embedder.stats
      const row = yield* Effect.promise(() =>
        runW1(
          name,
          { compile: (r) => Runtime.runPromise(runtime)(compiler.compile(r)) },
          { get calls() { return Runtime.runSync(runtime)(cache.stats).loads } },
          () => Runtime.runSync(runtime)(cache.stats).hitRate,
          requests
        )
      )
      const after = yield* embedder.stats
      rows.push({ ...row, embedCallsPerCompile: round((after.calls - before.calls) / 1000, 2) })
    }
    return rows
  }).pipe(Effect.scoped, Effect.provide(Sql.SqlStore.layer().pipe(Layer.provideMerge(database))))
  const rows = await Effect.runPromise(program)
  results.w1Real = Object.fromEntries(rows.map((r) => [r.row, r]))
  table("w1 on the embedded store: 16 PGlite sources × 200 entries (storeManagerCalls = manager opens; oursNovel: a new text every compile)", rows)
}
