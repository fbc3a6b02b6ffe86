/**
 * w3: eviction quality. The headline row: Zipf(1.0) over 1,000 ids, capacity 100, 200,000 gets,
 * for ours, Effect's `Cache`, `lru-cache`, FIFO and the static optimum. The curves: hit rate against
 * cache size on six trace shapes (`traces.ts`), for ours, `lru-cache`, Effect's `Cache` and Belady's
 * optimum, written as JSON and as an SVG chart (bench/results/w3-hit-rates.svg). With the public
 * traces Caffeine's hit rates are published on (`--traces <dir>` or PANTHEON_TRACES; never
 * committed, see `TRACE_FILES`), their rows too, against LRU and the published W-TinyLFU figures:
 * the target is ours ≥ max(LRU, published) − 1 point on every row.
 */
import { Cache, Effect } from "effect"
import { LRUCache } from "lru-cache"
import { writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import * as LoadingCache from "../../src/cache/LoadingCache.js"
import { results, table } from "../lib/report.js"
import { chart } from "../lib/svg.js"
import { optimum, publicTraces, TRACE_FILES, TRACE_SOURCE, traces } from "../lib/traces.js"
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

/** The directory of the public trace files, if given. */
const tracesDir = (): string | undefined => {
  const i = process.argv.indexOf("--traces")
  return i >= 0 ? process.argv[i + 1] : process.env.PANTHEON_TRACES
}

/** The public traces' rows, or why there are none. */
const publicRows = async () => {
  const dir = tracesDir()
  if (dir === undefined) {
    console.log(`w3: the public traces' rows are skipped: extract ${TRACE_FILES.map((t) => t.file).join(", ")} from ${TRACE_SOURCE} (gunzip/unxz) into a directory and pass --traces <dir> (or set PANTHEON_TRACES)\n`)
    return undefined
  }
  // W3_WHOLE_TRACES=1 replays the long traces whole (the ORM traces: 5,000,000 requests each, some minutes).
  const { traces: found, missing } = publicTraces(dir, process.env.W3_WHOLE_TRACES === "1")
  if (missing.length > 0) console.log(`w3: not in ${dir}, skipped: ${missing.join(", ")}\n`)
  const rows: Array<Record<string, unknown>> = []
  const curves: Record<string, Record<string, Record<string, number>>> = {}
  for (const t of found) {
    curves[t.name] = {}
    for (const size of t.sizes) {
      const point: Record<string, number> = { ours: round(await ours(t.keys, size), 4), lru: round(lru(t.keys, size), 4), optimum: round(optimum(t.keys, size), 4) }
      const published = t.published[size]
      if (published !== undefined) point.published = published
      curves[t.name]![size] = point
      const target = round(Math.max(point.lru!, published ?? 0) - 0.01, 4)
      rows.push({ trace: t.name, requests: t.keys.length, size, ...point, target, meets: point.ours! >= target, oursMinusLru: round(point.ours! - point.lru!, 4) })
    }
  }
  table("w3 public traces: hit rate (published: Caffeine 2.3's W-TinyLFU; target: max(LRU, published) − 1 point)", rows)
  const missed = rows.filter((r) => !r.meets)
  console.log(`public traces: target met on ${rows.length - missed.length} of ${rows.length} rows; at or above LRU on ${rows.filter((r) => (r.oursMinusLru as number) >= 0).length}\n`)
  return { rows, curves, traces: found.map((t) => ({ name: t.name, description: t.description, sizes: t.sizes })) }
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
  const pub = await publicRows()
  const series = (points: Record<string, Record<string, number>>, sizes: ReadonlyArray<number>, withEffect: boolean) => [
    { name: "ours", color: "#1f77b4", points: sizes.map((s) => [s, points[s]!.ours!] as const) },
    { name: "lru-cache", color: "#ff7f0e", points: sizes.map((s) => [s, points[s]!.lru!] as const) },
    ...(withEffect ? [{ name: "Effect Cache", color: "#d62728", points: sizes.map((s) => [s, points[s]!.effectCache!] as const) }] : []),
    { name: "optimum (Belady)", color: "#7f7f7f", dashed: true, points: sizes.map((s) => [s, points[s]!.optimum!] as const) },
    ...(withEffect ? [] : [{ name: "published W-TinyLFU", color: "#2ca02c", dashed: true, points: sizes.filter((s) => points[s]!.published !== undefined).map((s) => [s, points[s]!.published!] as const) }])
  ]
  writeFileSync(
    CHART,
    chart(
      "Hit rate against cache size: ours (adaptive W-TinyLFU), lru-cache, Effect 3's Cache, optimum; public traces with Caffeine 2.3's published W-TinyLFU",
      [
        ...Object.entries(curves).map(([name, points]) => ({ title: name, series: series(points, SIZES, true) })),
        ...(pub?.traces ?? []).map((t) => ({ title: `${t.name} (public)`, series: series(pub!.curves[t.name]!, t.sizes, false) }))
      ],
      "cache size (entries)"
    )
  )
  results.w3 = {
    ...row,
    curves,
    traces: descriptions,
    belowLru: below.length,
    rows: rows.length,
    ...(pub === undefined ? {} : { publicTraces: { source: TRACE_SOURCE, rows: pub.rows, targetMet: pub.rows.filter((r) => r.meets).length } })
  }
}
