/**
 * npm run bench [-- w1 w3 ...]: the workloads (bench/workloads), a markdown table each on stdout,
 * every figure in bench/results/latest.json. Run with --expose-gc (the npm script does) for w5.
 * With no names, each workload runs in a process of its own, so that none inherits another's heap
 * (a large leftover heap slowed the micro-benchmarks by half).
 */
import { spawnSync } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { dirname } from "node:path"
import { fileURLToPath } from "node:url"
import { latestPath, readLatest, results } from "./lib/report.js"
import { w1, w1Real } from "./workloads/w1.js"
import { w2 } from "./workloads/w2.js"
import { w3 } from "./workloads/w3.js"
import { w4 } from "./workloads/w4.js"
import { w5 } from "./workloads/w5.js"
import { w6 } from "./workloads/w6.js"
import { w7 } from "./workloads/w7.js"
import { w8 } from "./workloads/w8.js"
import { w9 } from "./workloads/w9.js"
import { w10 } from "./workloads/w10.js"

const all: Record<string, () => Promise<void>> = { w1, w1Real, w2, w3, w4, w5, w6, w7, w8, w9, w10 }
// Options with a value (`--traces <dir>` for w3, `--locomo <dir>` for w8) are read by the workloads; the rest are names.
const args = process.argv.slice(2)
const only = args.filter((arg, i) => !arg.startsWith("--") && !args[i - 1]?.startsWith("--"))
const options = args.filter((arg) => !only.includes(arg))
const unknown = only.filter((name) => !(name in all))
if (unknown.length > 0) {
  console.error(`unknown workload ${unknown.join(", ")} (known: ${Object.keys(all).join(", ")})`)
  process.exit(2)
}

if (only.length === 0) {
  for (const name of Object.keys(all)) {
    const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), name, ...options], { stdio: "inherit" })
    if (child.status !== 0) {
      console.error(`bench: ${name} failed (exit ${child.status ?? child.signal})`)
      process.exit(1)
    }
  }
} else {
  for (const name of only) await all[name]!()
  mkdirSync(dirname(latestPath), { recursive: true })
  // Each run keeps the other workloads' last figures.
  writeFileSync(latestPath, JSON.stringify({ ...readLatest(), ...results }, null, 2) + "\n")
  console.log(`results written to ${latestPath}`)
}
