/**
 * npm run soak -- --minutes N: compiles, writes and invalidations against the embedded store for N
 * minutes (default 1), printing compiles, errors, RSS and heap every 10 s. Exits 1 if any operation
 * failed or if memory trends upward (the heap's least-squares slope over the second half of the run
 * above 1 MiB a minute, after collections).
 */
import { Effect, Layer, ManagedRuntime } from "effect"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { Invalidated } from "../src/domain/events.js"
import { EmbeddedStoreLive } from "../src/layers/EmbeddedStoreLive.js"
import { PersistenceAdapterLive } from "../src/layers/PersistenceAdapterLive.js"
import { ContextCompiler } from "../src/services/ContextCompiler.js"
import { StoreEvents } from "../src/services/StoreEvents.js"
import { SqlStore } from "../src/stores/sql/SqlStore.js"

setFlagsFromString("--expose-gc")
const gc = runInNewContext("gc") as () => void

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`)
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`error: --${name} must be a number above 0 (got ${process.argv[i + 1]})`)
    process.exit(2)
  }
  return value
}
const minutes = arg("minutes", 1)
const SOURCES = 8
const SLOPE_LIMIT = 1024 * 1024 // bytes of heap a minute

// Small caches, so that they are full within seconds: what grows after that is a leak, not a cache filling up.
const runtime = ManagedRuntime.make(
  PersistenceAdapterLive({ cache: { ttl: "30 seconds", capacity: 6 } }).pipe(
    Layer.provideMerge(EmbeddedStoreLive({ dataDir: "memory://", dimensions: 256, embedCacheBytes: 1024 * 1024, resultCache: { maxBytes: 1024 * 1024 } }))
  )
)
const words = "deploy checkout database migration timeout payment webhook retry cache latency invoice refund agent task memory vector".split(" ")
const sentence = (n: number) => Array.from({ length: n }, () => words[Math.floor(Math.random() * words.length)]).join(" ")

const counters = { compiles: 0, writes: 0, invalidations: 0, errors: 0 }
const samples: Array<{ t: number; heap: number; rss: number }> = []

const seed = Effect.gen(function* () {
  const store = yield* SqlStore
  for (let s = 0; s < SOURCES; s++) {
    yield* store.registerSource(`soak-${s}`)
    yield* (yield* store.open(`soak-${s}`)).insert(Array.from({ length: 200 }, (_, i) => ({ id: `e${i}`, text: sentence(12), timestamp: Date.now() - i * 1000, metadata: { displayName: `user${i % 7}` } })))
  }
})

const step = (i: number) =>
  Effect.gen(function* () {
    const roll = Math.random()
    if (roll < 0.9) {
      const sources = Array.from({ length: 1 + (i % 4) }, (_, k) => ({ id: `soak-${(i + k * 3) % SOURCES}` }))
      yield* (yield* ContextCompiler).compile({ sources, texts: [sentence(6)], onSourceError: "fail" })
      counters.compiles++
    } else if (roll < 0.98) {
      const id = `soak-${i % SOURCES}`
      yield* (yield* (yield* SqlStore).open(id)).insert([{ id: `w${i % 500}`, text: sentence(10), timestamp: Date.now(), metadata: { displayName: "writer" } }])
      counters.writes++
    } else {
      yield* (yield* StoreEvents).publish(Invalidated.make({ id: `soak-${i % SOURCES}` }))
      counters.invalidations++
    }
  })

const sample = (started: number) => {
  gc()
  gc()
  const { heapUsed, rss } = process.memoryUsage()
  samples.push({ t: (Date.now() - started) / 60_000, heap: heapUsed, rss })
  const mb = (n: number) => (n / 1024 / 1024).toFixed(1)
  console.log(`${((Date.now() - started) / 1000).toFixed(0).padStart(5)} s  compiles ${counters.compiles}  writes ${counters.writes}  invalidations ${counters.invalidations}  errors ${counters.errors}  rss ${mb(rss)} MB  heap ${mb(heapUsed)} MB`)
}

/** Least-squares slope of heap against minutes. */
const slope = (points: ReadonlyArray<{ t: number; heap: number }>) => {
  const n = points.length
  const mt = points.reduce((a, p) => a + p.t, 0) / n
  const mh = points.reduce((a, p) => a + p.heap, 0) / n
  const num = points.reduce((a, p) => a + (p.t - mt) * (p.heap - mh), 0)
  const den = points.reduce((a, p) => a + (p.t - mt) ** 2, 0)
  return den === 0 ? 0 : num / den
}

await runtime.runPromise(seed)
const started = Date.now()
let nextSample = started
for (let i = 0; Date.now() - started < minutes * 60_000; i++) {
  const exit = await runtime.runPromiseExit(step(i))
  if (exit._tag === "Failure") {
    counters.errors++
    if (counters.errors <= 5) console.error(`error: ${String(exit.cause)}`)
  }
  if (Date.now() >= nextSample) {
    sample(started)
    nextSample += 10_000
  }
}
sample(started)
await runtime.dispose()

const secondHalf = samples.slice(Math.floor(samples.length / 2))
const trend = secondHalf.length >= 3 ? slope(secondHalf) : 0
console.log(`heap trend over the second half: ${(trend / 1024).toFixed(0)} KiB a minute (limit ${SLOPE_LIMIT / 1024} KiB)`)
if (counters.errors > 0 || trend > SLOPE_LIMIT) {
  console.error(`soak failed: ${counters.errors} errors${trend > SLOPE_LIMIT ? ", memory trends upward" : ""}`)
  process.exit(1)
}
console.log(`soak passed: ${counters.compiles} compiles, ${counters.writes} writes, ${counters.invalidations} invalidations, no errors, flat memory`)
