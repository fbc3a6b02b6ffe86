/**
 * npm run soak -- --minutes N: compiles, writes and invalidations against the embedded store for N
 * minutes (default 3: the heap's slope over a shorter second half is mostly noise), with the reliability faults mixed in (a data-directory lock taken and let
 * go, a lock left by a dead process reclaimed, a Promise facade disposed under a running compile,
 * which must reject with AdapterDisposed, a source that never answers within queryTimeout, which
 * must be listed by the health report, and one compile over 2,000 caller sources, which must answer
 * every one, an embedded database whose worker dies in the middle of a statement that never ends,
 * which must fail that statement and the next with a SqlError while the event loop keeps turning,
 * a file with a NUL character and a duplicate id, which ingest must refuse with both line
 * numbers, and a SIGTERM to the command line's ingest of 5,000 lines once it holds the data
 * directory, which must exit 143 saying nothing was written, with nothing written, and a page of a
 * source's table overwritten on disk, whose next read must fail with a checksum error), printing compiles, errors, RSS, heap and the longest event-loop gap every 10 s. Exits 1
 * if any operation failed, if memory trends upward (the heap's least-squares slope over the second
 * half of the run above 1 MiB a minute, after collections), or if the event loop ever stood still
 * for 2 s (the embedded store's work runs on its worker thread).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Effect, Either, Fiber, Layer, ManagedRuntime } from "effect"
import { spawn } from "node:child_process"
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, utimesSync, writeFileSync, writeSync } from "node:fs"
import { hostname, tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { Invalidated } from "../src/domain/events.js"
import { Embedder } from "../src/embedding/Embedder.js"
import { managersBackend } from "../src/layers/backends.js"
import { EmbeddedStoreLive } from "../src/layers/EmbeddedStoreLive.js"
import { health } from "../src/layers/health.js"
import { PersistenceAdapterLive } from "../src/layers/PersistenceAdapterLive.js"
import { ContextCompiler } from "../src/services/ContextCompiler.js"
import { StoreEvents } from "../src/services/StoreEvents.js"
import { makePantheonPersistenceAdapter } from "../src/promise/makePantheonPersistenceAdapter.js"
import { INTERRUPTED, parseJsonl } from "../src/cli/ingest.js"
import { LOCK_FILE, lock, STALE_AFTER_MS } from "../src/stores/sql/DataDirLock.js"
import { PgliteClient } from "../src/stores/sql/PgliteClient.js"
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
const minutes = arg("minutes", 3)
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..")
const SOURCES = 8
const SLOPE_LIMIT = 1024 * 1024 // bytes of heap a minute
const GAP_LIMIT_MS = 2000 // the event loop standing still this long is a freeze
const FAULTS = 8

// Small caches, so that they are full within seconds: what grows after that is a leak, not a cache filling up.
const runtime = ManagedRuntime.make(
  PersistenceAdapterLive({ cache: { ttl: "30 seconds", capacity: 6 } }).pipe(
    Layer.provideMerge(EmbeddedStoreLive({ dataDir: "memory://", dimensions: 256, embedCacheBytes: 1024 * 1024, resultCache: { maxBytes: 1024 * 1024 } }))
  )
)
const words = "deploy checkout database migration timeout payment webhook retry cache latency invoice refund agent task memory vector".split(" ")
const sentence = (n: number) => Array.from({ length: n }, () => words[Math.floor(Math.random() * words.length)]).join(" ")

const counters = { compiles: 0, writes: 0, invalidations: 0, faults: 0, errors: 0 }
const lockDir = mkdtempSync(join(tmpdir(), "pantheon-soak-"))

/** One of the reliability faults, each checked: a failed check is an error of the run. */
const fault = async (i: number) => {
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new Error(what)
  }
  if (i % FAULTS === 0) {
    // A lock left by a process on another host that stopped beating: reclaimed, then let go.
    writeFileSync(join(lockDir, LOCK_FILE), JSON.stringify({ pid: 7, host: `gone-${hostname()}`, token: "gone" }))
    const when = new Date(Date.now() - STALE_AFTER_MS - 1000)
    utimesSync(join(lockDir, LOCK_FILE), when, when)
    const release = await lock(lockDir, 0)
    release()
    check(!existsSync(join(lockDir, LOCK_FILE)), "the lock was not let go")
  } else if (i % FAULTS === 2) {
    // A source that never answers in time: the compiles go on without it, and it is reported.
    const never = Effect.never
    const slow = ManagedRuntime.make(
      PersistenceAdapterLive({ cache: { queryTimeout: "20 millis" } }).pipe(
        Layer.provideMerge(managersBackend([{ name: "never", getMostRecent: () => never, getMostRelevant: () => never, insert: () => Effect.void }]))
      )
    )
    try {
      for (let k = 0; k < 2; k++) await slow.runPromise(Effect.flatMap(ContextCompiler, (c) => c.compile({ sources: [{ id: "never" }] })))
      const report = await slow.runPromise(health)
      check(report.slowSources.length === 1 && report.slowSources[0]!.id === "never" && report.slowSources[0]!.compiles === 2, `the slow source was reported as ${JSON.stringify(report.slowSources)}`)
    } finally {
      await slow.dispose()
    }
  } else if (i % FAULTS === 3) {
    // One compile over 2,000 caller sources (more than the manager cache holds): every source answers.
    const managers = Array.from({ length: 2000 }, (_, s) => ({
      name: `many-${s}`,
      getMostRecent: async () => [{ id: `m${s}`, text: `note ${s}`, timestamp: 1_700_000_000_000 + s, metadata: { displayName: "many" } }],
      getMostRelevant: async () => []
    }))
    const adapter = makePantheonPersistenceAdapter({ getStoreManagers: async () => managers })
    try {
      const messages = await adapter.compile({ sources: managers.map((m) => ({ id: m.name })) })
      check(messages.length === managers.length, `a compile over 2,000 sources gave ${messages.length} messages`)
    } finally {
      await adapter.dispose()
    }
  } else if (i % FAULTS === 4) {
    // The embedded database's worker dies under a statement that never ends: that statement and
    // the next fail with a SqlError saying so, and the event loop turned meanwhile.
    const outcome = await Effect.runPromise(
      Effect.scoped(Effect.provide(
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          const client = yield* PgliteClient
          const running = yield* Effect.fork(Effect.either(sql.unsafe("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t")))
          let turns = 0
          while (turns < 50) yield* Effect.promise(() => new Promise((r) => setImmediate(() => r(turns++))))
          yield* Effect.promise(() => client.pglite.terminate())
          const first = yield* Fiber.join(running)
          const next = yield* Effect.either(sql`SELECT 1`)
          return { first, next, turns }
        }),
        PgliteClient.layer({ dataDir: "memory://" })
      ))
    )
    const failedSaying = (e: Either.Either<unknown, unknown>) => Either.isLeft(e) && e.left instanceof SqlError && /worker/.test(e.left.message)
    check(failedSaying(outcome.first) && failedSaying(outcome.next), `a dead worker's statements ended as ${String(outcome.first)} and ${String(outcome.next)}`)
  } else if (i % FAULTS === 5) {
    // A file with a NUL character and a duplicate id: refused before anything is written, naming the lines.
    const line = (id: string, text: string) => JSON.stringify({ id, text, timestamp: 1_700_000_000_000, metadata: {} })
    const nul = parseJsonl([line("a", "fine"), line("b", "nul \u0000 here")].join("\n"), "soak.jsonl")
    check(Either.isLeft(nul) && /soak\.jsonl:2\b/.test(nul.left.message) && /NUL/.test(nul.left.message), `a NUL character was ${Either.isLeft(nul) ? `refused as "${nul.left.message}"` : "accepted"}`)
    const twice = parseJsonl([line("a", "one"), line("b", "two"), line("a", "three")].join("\n"), "soak.jsonl")
    check(Either.isLeft(twice) && /\b1\b/.test(twice.left.message) && /\b3\b/.test(twice.left.message), `a duplicate id was ${Either.isLeft(twice) ? `refused as "${twice.left.message}"` : "accepted"}`)
  } else if (i % FAULTS === 7) {
    // Garbage in a page of a source's table on disk: the next read fails with a checksum error, never reads it as data.
    const data = join(lockDir, `damaged-${i}`)
    const onDisk = (effect: Effect.Effect<unknown, unknown, SqlStore | PgliteClient>) =>
      Effect.runPromise(Effect.either(Effect.provide(effect, SqlStore.layer().pipe(Layer.provideMerge(Layer.mergeAll(PgliteClient.layer({ dataDir: data }), Embedder.layerFeatureHashing(), StoreEvents.layerLocal))))))
    const written = await onDisk(
      Effect.gen(function* () {
        const store = yield* SqlStore
        yield* store.registerSource("damaged")
        yield* (yield* store.open("damaged")).insert(Array.from({ length: 200 }, (_, k) => ({ id: `d${k}`, text: sentence(6), timestamp: k + 1 })))
        const { pglite } = yield* PgliteClient
        const found = yield* Effect.promise(() =>
          pglite.query<{ path: string }>("SELECT pg_relation_filepath(c.oid) AS path FROM pg_class c WHERE c.relname LIKE 'pantheon_entries_%' AND c.relkind = 'r'")
        )
        return found.rows[0]!.path
      })
    )
    check(Either.isRight(written), `the store to damage could not be written: ${Either.isLeft(written) ? String(written.left) : ""}`)
    const fd = openSync(join(data, (written as Either.Right<unknown, string>).right), "r+")
    writeSync(fd, Buffer.alloc(256, 0xab), 0, 256, 4000)
    closeSync(fd)
    const read = await onDisk(Effect.flatMap(SqlStore, (store) => Effect.flatMap(store.open("damaged"), (m) => m.getMostRecent(500))))
    check(Either.isLeft(read) && /checksum|invalid page/.test(String(read.left)), `a damaged page was read as ${Either.isLeft(read) ? String(read.left) : "data"}`)
    rmSync(data, { recursive: true, force: true })
  } else if (i % FAULTS === 6) {
    // SIGTERM to the command line's ingest once it holds the data directory: exit 143, nothing written.
    const data = join(lockDir, `signal-${i}`)
    const file = join(lockDir, "signal.jsonl")
    writeFileSync(file, Array.from({ length: 5000 }, (_, k) => JSON.stringify({ id: `s${k}`, text: sentence(8), timestamp: 1_700_000_000_000 + k })).join("\n"))
    const cli = (args: ReadonlyArray<string>) => spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } })
    const ended = (child: ReturnType<typeof cli>) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        let out = ""
        child.stdout.on("data", (b: Buffer) => (out += b.toString()))
        child.stderr.on("data", (b: Buffer) => (out += b.toString()))
        child.once("exit", (code) => resolve({ code, out }))
      })
    const ingesting = cli(["ingest", file, "--source", "signalled", "--data-dir", data])
    const result = ended(ingesting)
    while (!existsSync(join(data, LOCK_FILE)) && ingesting.exitCode === null) await new Promise((r) => setTimeout(r, 10))
    ingesting.kill("SIGTERM")
    const { code, out } = await result
    check(code === 143 && out.includes(INTERRUPTED), `an ingest under SIGTERM ended with ${code}: ${out.trim().split("\n").pop()}`)
    const listed = await ended(cli(["sources", "--data-dir", data]))
    check(listed.code === 0 && !listed.out.includes("signalled"), `after the SIGTERM, sources said (${listed.code}): ${listed.out.trim()}`)
    rmSync(data, { recursive: true, force: true })
  } else {
    const adapter = makePantheonPersistenceAdapter({
      getStoreManagers: async () => [{ name: "stuck", getMostRecent: () => new Promise<Array<unknown>>(() => {}), getMostRelevant: async () => [] }]
    })
    const running = adapter.compile({ sources: [{ id: "stuck" }] }).then(
      () => "resolved",
      (e: { _tag?: string }) => e._tag
    )
    await new Promise((r) => setTimeout(r, 5))
    await adapter.dispose()
    const outcome = await running
    check(outcome === "AdapterDisposed", `a compile under dispose() ended with ${outcome}`)
  }
  counters.faults++
}
const samples: Array<{ t: number; heap: number; rss: number }> = []

/** The longest gap between two ticks of a 100 ms timer since the last sample, and over the run. */
const gaps = { last: performance.now(), sinceSample: 0, longest: 0 }
const ticker = setInterval(() => {
  const now = performance.now()
  const gap = now - gaps.last - 100
  gaps.last = now
  gaps.sinceSample = Math.max(gaps.sinceSample, gap)
  gaps.longest = Math.max(gaps.longest, gap)
}, 100)

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
  console.log(`${((Date.now() - started) / 1000).toFixed(0).padStart(5)} s  compiles ${counters.compiles}  writes ${counters.writes}  invalidations ${counters.invalidations}  faults ${counters.faults}  errors ${counters.errors}  rss ${mb(rss)} MB  heap ${mb(heapUsed)} MB  longest loop gap ${Math.max(0, gaps.sinceSample).toFixed(0)} ms`)
  gaps.sinceSample = 0
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
  if (i % 100 === 99) {
    await fault(i / 100).catch((e: Error) => {
      counters.errors++
      if (counters.errors <= 5) console.error(`error: ${e.message}`)
    })
  }
  if (Date.now() >= nextSample) {
    sample(started)
    nextSample += 10_000
  }
}
sample(started)
clearInterval(ticker)
await runtime.dispose()
rmSync(lockDir, { recursive: true, force: true })

const secondHalf = samples.slice(Math.floor(samples.length / 2))
const trend = secondHalf.length >= 3 ? slope(secondHalf) : 0
console.log(`heap trend over the second half: ${(trend / 1024).toFixed(0)} KiB a minute (limit ${SLOPE_LIMIT / 1024} KiB)`)
console.log(`longest event-loop gap: ${Math.max(0, gaps.longest).toFixed(0)} ms (limit ${GAP_LIMIT_MS} ms)`)
if (counters.errors > 0 || trend > SLOPE_LIMIT || gaps.longest > GAP_LIMIT_MS) {
  console.error(`soak failed: ${counters.errors} errors${trend > SLOPE_LIMIT ? ", memory trends upward" : ""}${gaps.longest > GAP_LIMIT_MS ? ", the event loop stood still" : ""}`)
  process.exit(1)
}
console.log(`soak passed: ${counters.compiles} compiles, ${counters.writes} writes, ${counters.invalidations} invalidations, ${counters.faults} faults, no errors, flat memory, no freeze`)
