/**
 * w10: the embedded store's longest event-loop gap. A 10 ms timer and `monitorEventLoopDelay` run
 * while PGlite works, on a data directory on disk: a 50,000-row ingest (the CLI's `ingest`, one
 * transaction), a warm open of a 200,000-entry source (from `ManagerCache.get` until it answers
 * from memory), compiles of it from memory and SQL-served compiles of it (`warmBytes: 0`). Figures: maxGcMs (V8's longest collection), maxGapMs (the longest time
 * between two ticks of the timer, beyond its 10 ms), p99DelayMs and maxDelayMs (the monitor's),
 * and each phase's wall time; `idle` is the same timer while nothing runs (what the machine's other
 * processes cost it). `W10_SIZE` and `W10_INGEST` shrink the two sources (for a quick look).
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks"
import { Cause, Effect, Exit, Layer, ManagedRuntime } from "effect"
import { ingest } from "../../src/cli/ingest.js"
import { EmbeddedStoreLive } from "../../src/layers/EmbeddedStoreLive.js"
import { PersistenceAdapterLive } from "../../src/layers/PersistenceAdapterLive.js"
import { ContextCompiler } from "../../src/services/ContextCompiler.js"
import { ManagerCache } from "../../src/services/ManagerCache.js"
import { StoreManagerRegistry } from "../../src/services/StoreManagerRegistry.js"
import { results, table } from "../lib/report.js"
import { round } from "../lib/workload.js"
import { corpus } from "./w7.js"

const TICK_MS = 10
const INGEST = Number(process.env.W10_INGEST ?? 50_000)
const SIZE = Number(process.env.W10_SIZE ?? 200_000)
const COMPILES = 3

/** Watches the event loop from `start` to `stop`: the longest gap between ticks of a 10 ms timer, and the delay histogram. */
const watch = () => {
  const histogram = monitorEventLoopDelay({ resolution: 10 })
  let last = performance.now()
  let maxGap = 0
  const timer = setInterval(() => {
    const now = performance.now()
    maxGap = Math.max(maxGap, now - last - TICK_MS)
    last = now
  }, TICK_MS)
  histogram.enable()
  // The longest garbage collection meanwhile (a pause of V8's, not of the store's work).
  let maxGc = 0
  const collections = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) maxGc = Math.max(maxGc, entry.duration)
  })
  collections.observe({ entryTypes: ["gc"] })
  const started = performance.now()
  return () => {
    clearInterval(timer)
    histogram.disable()
    collections.disconnect()
    maxGap = Math.max(maxGap, performance.now() - last - TICK_MS)
    return {
      maxGapMs: round(Math.max(0, maxGap), 0),
      p99DelayMs: round(histogram.percentile(99) / 1e6, 0),
      maxDelayMs: round(histogram.max / 1e6, 0),
      maxGcMs: round(maxGc, 0),
      wallMs: round(performance.now() - started, 0)
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Runs `effect`, failing with its cause in words. */
const run = async <A, E, R>(runtime: ManagedRuntime.ManagedRuntime<R, unknown>, effect: Effect.Effect<A, E, R>): Promise<A> => {
  const exit = await runtime.runPromiseExit(effect)
  if (Exit.isFailure(exit)) throw new Error(`w10: ${Cause.pretty(exit.cause)}`)
  return exit.value
}

/** A novel compile of the large source (a question of its own each time). */
const compileBig = (i: number) =>
  Effect.flatMap(ContextCompiler, (c) => c.compile({ sources: [{ id: "w10big" }], texts: [`why is the deploy slow ${i} and who approves the fix?`], onSourceError: "fail" }))

export const w10 = async () => {
  const dir = mkdtempSync(join(tmpdir(), "pantheon-w10-"))
  const store = EmbeddedStoreLive({ dataDir: join(dir, "data"), dimensions: 256, resultCache: false })
  const adapter = (warmBytes: number) => PersistenceAdapterLive({ cache: { ttl: "1 hour", warmBytes, queryTimeout: "120 seconds" } }).pipe(Layer.provideMerge(store))
  const rows: Array<Record<string, unknown>> = []
  const figures: Record<string, unknown> = {}
  const later: Array<ManagedRuntime.ManagedRuntime<never, unknown>> = []
  try {
    // The machine's own noise: the same timer for 5 s while nothing runs (other processes share the cores).
    {
      const stop = watch()
      await sleep(5000)
      figures.idle = { size: 0, ...stop() }
    }
    // Ingest: the CLI's transaction, 50 rows a statement.
    {
      const runtime = ManagedRuntime.make(store)
      const entries = corpus(0, INGEST)
      await run(runtime, Effect.void) // the store started (initdb on a new directory) before the watch
      const stop = watch()
      await run(runtime, ingest("w10ingest", entries))
      figures.ingest = { size: INGEST, ...stop() }
      // The large source, not measured: written in a few transactions.
      const big = corpus(1, SIZE)
      for (let i = 0; i < big.length; i += 50_000) await run(runtime, ingest("w10big", big.slice(i, i + 50_000)))
      await runtime.dispose()
    }
    // Warm open: from the manager cache's get until the source answers from memory.
    {
      const runtime = ManagedRuntime.make(adapter(1024 * 1024 * 1024))
      await run(runtime, Effect.flatMap(StoreManagerRegistry, (r) => r.catalog))
      const stop = watch()
      const manager = await run(runtime, Effect.flatMap(ManagerCache, (c) => c.get("w10big")))
      const estimate = manager.weight?.()
      while (manager.weight !== undefined && manager.weight() === estimate) await sleep(5)
      figures.warmOpen = { size: SIZE, ...stop() }
      // Compiles answered from memory (the warm search runs on the main thread).
      const compiled = watch()
      for (let i = 0; i < COMPILES * 10; i++) await run(runtime, compileBig(i))
      const measured = compiled()
      figures.warmCompile = { size: SIZE, ...measured, perCompileMs: round(measured.wallMs / (COMPILES * 10), 1) }
      // Kept open to the end: disposing a runtime after a bare ManagerCache.get interrupted the next runtime's compiles.
      later.push(runtime)
    }
    // SQL-served compiles of the large source.
    {
      const runtime = ManagedRuntime.make(adapter(0))
      await run(runtime, Effect.flatMap(StoreManagerRegistry, (r) => r.catalog))
      const stop = watch()
      for (let i = 0; i < COMPILES; i++) {
        await run(runtime, compileBig(i))
      }
      const measured = stop()
      figures.sqlCompile = { size: SIZE, ...measured, perCompileMs: round(measured.wallMs / COMPILES, 0) }
      await runtime.dispose()
    }
    for (const runtime of later) await runtime.dispose()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  for (const [phase, f] of Object.entries(figures)) rows.push({ phase, perCompileMs: "", ...(f as Record<string, unknown>) })
  table("w10: longest event-loop gap while the embedded store works (10 ms timer)", rows)
  results.w10 = figures
}
