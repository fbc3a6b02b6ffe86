/** The bench's output: markdown tables on stdout, every figure into `results` (bench/results/latest.json). */
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
