/**
 * w9: one compile over N sources (100, 1,000, 4,000), the Promise facade over in-memory caller
 * managers (each answers 10 recent and 5 relevant entries) with the default configuration (64
 * managers held: past that every compile loads again). Each size runs in a process of its own so
 * that its peak RSS (`maxRSS`) is its own. Target: the 4,000 row's p50 and peak RSS ≤ 4x the 1,000 row's.
 */
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { makePantheonPersistenceAdapter } from "../../src/promise/makePantheonPersistenceAdapter.js"
import { results, table } from "../lib/report.js"
import { percentile, round } from "../lib/workload.js"
import { fakeManager } from "./w1.js"

export const SIZES = [100, 1000, 4000]

/** Compiles timed at each size (after one cold compile): about the same total work at each. */
const compilesAt = (sources: number) => Math.max(9, Math.min(30, Math.round(20_000 / sources)))

interface Row {
  readonly sources: number
  readonly compiles: number
  readonly messages: number
  readonly coldMs: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly rssBeforeMb: number
  readonly peakRssMb: number
}

/** One size, in this process. */
const measure = async (sources: number): Promise<Row> => {
  const managers = Array.from({ length: sources }, (_, s) => fakeManager(`source-${s}`))
  const adapter = makePantheonPersistenceAdapter({ getStoreManagers: async () => managers })
  const request = { texts: ["what did we decide about the deploy?"], sources: managers.map((m) => ({ id: m.name })) }
  try {
    global.gc?.()
    const rssBefore = process.memoryUsage().rss
    let t0 = performance.now()
    const messages = (await adapter.compile(request)).length
    const coldMs = performance.now() - t0
    const times: Array<number> = []
    for (let i = 0; i < compilesAt(sources); i++) {
      t0 = performance.now()
      await adapter.compile(request)
      times.push(performance.now() - t0)
    }
    return {
      sources,
      compiles: times.length,
      messages,
      coldMs: round(coldMs, 1),
      p50Ms: round(percentile(times, 50), 1),
      p99Ms: round(percentile(times, 99), 1),
      rssBeforeMb: round(rssBefore / 2 ** 20, 0),
      peakRssMb: round(process.resourceUsage().maxRSS / 1024, 0)
    }
  } finally {
    await adapter.dispose()
  }
}

export const w9 = async () => {
  const rows: Array<Row> = []
  for (const sources of SIZES) {
    const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), String(sources)], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 600_000 })
    const line = child.stdout.trim().split("\n").at(-1)
    if (child.status !== 0 || line === undefined) throw new Error(`w9: the ${sources}-source run failed (exit ${child.status ?? child.signal})`)
    rows.push(JSON.parse(line) as Row)
  }
  const at = (n: number) => rows.find((r) => r.sources === n)!
  const ratios = { p50Ratio4000To1000: round(at(4000).p50Ms / at(1000).p50Ms, 2), peakRssRatio4000To1000: round(at(4000).peakRssMb / at(1000).peakRssMb, 2) }
  results.w9 = { rows, ...ratios }
  table("w9: one compile over N caller sources (Promise facade, default configuration)", rows.map((r) => ({ ...r })))
  console.log(`4,000 against 1,000 sources: p50 ${ratios.p50Ratio4000To1000}x, peak RSS ${ratios.peakRssRatio4000To1000}x (target ≤ 4x)\n`)
}

// Run as a child of w9: one size, its row as the last line of stdout.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const row = await measure(Number(process.argv[2]))
  console.log(JSON.stringify(row))
  process.exit(0)
}
