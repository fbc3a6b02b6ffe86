/** The bench's output: markdown tables on stdout, every figure into `results` (bench/results/latest.json). */
import { existsSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

/** bench/results/latest.json: every workload's last figures. */
export const latestPath = join(dirname(fileURLToPath(import.meta.url)), "..", "results", "latest.json")

/** The figures of the last runs (empty before the first). */
export const readLatest = (): Record<string, unknown> => (existsSync(latestPath) ? JSON.parse(readFileSync(latestPath, "utf8")) : {})

export const results: Record<string, unknown> = { startedAt: new Date().toISOString(), node: process.version }

export const table = (title: string, rows: ReadonlyArray<Record<string, unknown>>) => {
  const cols = Object.keys(rows[0]!)
  const text = [
    `### ${title}`,
    "",
    `| ${cols.join(" | ")} |`,
    `| ${cols.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${cols.map((c) => String(r[c])).join(" | ")} |`),
    ""
  ].join("\n")
  console.log(text)
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Heap in use after two full collections (run node with --expose-gc, as `npm run bench` does). */
export const heap = () => {
  global.gc?.()
  global.gc?.()
  return process.memoryUsage().heapUsed
}
