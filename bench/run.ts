/**
 * npm run bench [-- w1 w3 ...]: the workloads (bench/workloads), a markdown table each on stdout,
 * every figure in bench/results/latest.json. Run with --expose-gc (the npm script does) for w5.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { results } from "./lib/report.js"
import { w1, w1Real } from "./workloads/w1.js"
import { w2 } from "./workloads/w2.js"
import { w3 } from "./workloads/w3.js"
import { w4 } from "./workloads/w4.js"
import { w5 } from "./workloads/w5.js"
import { w6 } from "./workloads/w6.js"
import { w7 } from "./workloads/w7.js"

// The micro-benchmarks first: later workloads leave a large heap that slows them down by half.
const all: Record<string, () => Promise<void>> = { w4, w5, w1, w1Real, w2, w3, w6, w7 }
const only = process.argv.slice(2)
const unknown = only.filter((name) => !(name in all))
if (unknown.length > 0) {
  console.error(`unknown workload ${unknown.join(", ")} (known: ${Object.keys(all).join(", ")})`)
  process.exit(2)
}
for (const [name, run] of Object.entries(all)) if (only.length === 0 || only.includes(name)) await run()

const out = join(dirname(fileURLToPath(import.meta.url)), "results", "latest.json")
mkdirSync(dirname(out), { recursive: true })
// A run of some workloads keeps the other workloads' last figures.
const previous = existsSync(out) ? (JSON.parse(readFileSync(out, "utf8")) as Record<string, unknown>) : {}
writeFileSync(out, JSON.stringify({ ...previous, ...results }, null, 2) + "\n")
console.log(`results written to ${out}`)
