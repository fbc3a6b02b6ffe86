/**
 * w3: eviction quality. The headline row: Zipf(1.0) over 1,000 ids, capacity 100, 200,000 gets,
 * for ours, Effect's `Cache`, `lru-cache`, FIFO and the static optimum. The curves: hit rate against
 * cache size on six trace shapes (`traces.ts`), for ours, `lru-cache`, Effect's `Cache` and Belady's
 * optimum, written as JSON and as an SVG chart (bench/results/w3-hit-rates.svg).
 */
import { Cache, Effect } from "effect"
import { LRUCache } from "lru-cache"
import { writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import * as LoadingCache from "../../src/cache/LoadingCache.js"
import { results, table } from "../lib/report.js"
import { chart } from "../lib/svg.js"
import { optimum, traces } from "../lib/traces.js"
import { prng, round, zipf, zipfTopMass } from "../lib/workload.js"

const SIZES = [25, 50, 100, 200, 400]
const CHART = join(dirname(fileURLToPath(import.meta.url)), "..", "results", "w3-hit-rates.svg")

const ours = (keys: ReadonlyArray<string>, capacity: number) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const cache = yield* LoadingCache.makeWith({ capacity, lookup: (key: string) => Effect.succeed(key), timeToLive: () => "1 hour", label: "bench-w3" })
        for (const key of keys) yield* cache.get(key)
        return (yield* cache.stats).hitRate
      })
    )
  )

const effectCache = (keys: ReadonlyArray<string>, capacity: number) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const cache = yield* Cache.make({ capacity, timeToLive: "1 hour", lookup: (key: string) => Effect.succeed(key) })
      for (const key of keys) yield* cache.get(key)
      const s = yield* cache.cacheStats
      return s.hits / (s.hits + s.misses)
    })
  )

const lru = (keys: ReadonlyArray<string>, capacity: number) => {
  const cache = new LRUCache<string, string>({ max: capacity })
  let hits = 0
  for (const key of keys) {
    if (cache.get(key) !== undefined) hits++
    else cache.set(key, key)
  }
  return hits / keys.length
}

const fifo = (keys: ReadonlyArray<string>, capacity: number) => {
  const held = new Set<string>()
  let hits = 0
  for (const key of keys) {
    if (held.has(key)) hits++
    else {
      held.add(key)
      if (held.size > capacity) held.delete(held.values().next().value!)
    }
  }
  return hits / keys.length
}

export const w3 = async () => {
  const random = prng(7)
  const pick = zipf(1000, 1.0, random)
  const trace = Array.from({ length: 200_000 }, () => `id-${pick()}`)
  const row = {
    ours: round(await ours(trace, 100), 4),
    effectCache: round(await effectCache(trace, 100), 4),
    lru: round(lru(trace, 100), 4),
    fifo: round(fifo(trace, 100), 4),
    optimal: round(zipfTopMass(1000, 1.0, 100), 4)
  }
  table("w3: hit rate, Zipf(1.0) over 1,000 ids, capacity 100, 200,000 gets", [row])

  const curves: Record<string, Record<string, Record<string, number>>> = {}
  const rows: Array<Record<string, unknown>> = []
  for (const t of traces()) {
    curves[t.name] = {}
    for (const size of SIZES) {
      const point = {
        ours: round(await ours(t.keys, size), 4),
        lru: round(lru(t.keys, size), 4),
        effectCache: round(await effectCache(t.keys, size), 4),
        optimum: round(optimum(t.keys, size), 4)
      }
      curves[t.name]![size] = point
      rows.push({ trace: t.name, size, ...point, oursMinusLru: round(point.ours - point.lru, 4) })
    }
  }
  table("w3 curves: hit rate against cache size (200,000 requests a trace)", rows)
  const below = rows.filter((r) => (r.oursMinusLru as number) < 0)
  console.log(`ours below LRU on ${below.length} of ${rows.length} trace × size rows; largest gap ${round(Math.min(0, ...below.map((r) => r.oursMinusLru as number)), 4)}\n`)
  const descriptions = Object.fromEntries(traces().map((t) => [t.name, t.description]))
  writeFileSync(
    CHART,
    chart(
      "Hit rate against cache size: ours (W-TinyLFU, adaptive window), lru-cache, Effect 3's Cache, optimum",
      Object.entries(curves).map(([name, points]) => ({
        title: name,
        series: [
          { name: "ours", color: "#1f77b4", points: SIZES.map((s) => [s, points[s]!.ours!] as const) },
          { name: "lru-cache", color: "#ff7f0e", points: SIZES.map((s) => [s, points[s]!.lru!] as const) },
          { name: "Effect Cache", color: "#d62728", points: SIZES.map((s) => [s, points[s]!.effectCache!] as const) },
          { name: "optimum (Belady)", color: "#7f7f7f", dashed: true, points: SIZES.map((s) => [s, points[s]!.optimum!] as const) }
        ]
      })),
      "cache size (entries)"
    )
  )
  results.w3 = { ...row, curves, traces: descriptions, belowLru: below.length, rows: rows.length }
}
