/** w2: 1,000 concurrent compiles on a cold cache: catalog reads and loads per source. */
import { makePantheonPersistenceAdapter } from "../../src/promise/makePantheonPersistenceAdapter.js"
import { results, sleep, table } from "../lib/report.js"
import { round } from "../lib/workload.js"
import { fakeEntries, OPEN_MS, SOURCES, w1Requests } from "./w1.js"

export const w2 = async () => {
  let catalogCalls = 0
  const managers = Array.from({ length: SOURCES }, (_, s) => `source-${s}`)
  const adapter = makePantheonPersistenceAdapter({
    getStoreManagers: async () => {
      catalogCalls++
      await sleep(OPEN_MS)
      return managers.map((name) => ({ name, getMostRecent: async () => fakeEntries(name, 10, 0), getMostRelevant: async () => [] }))
    }
  })
  const requests = w1Requests()
  const start = performance.now()
  await Promise.all(requests.map((r) => adapter.compile(r)))
  const elapsed = performance.now() - start
  const stats = await adapter.cacheStats()
  const sourcesUsed = new Set(requests.flatMap((r) => r.sources.map((s) => s.id))).size
  await adapter.dispose()
  const row = { catalogReads: catalogCalls, managerLoads: stats.loads, sourcesUsed, loadsPerSource: round(stats.loads / sourcesUsed, 3), totalMs: round(elapsed, 1) }
  results.w2 = row
  table("w2: 1,000 concurrent compiles on a cold cache", [row])
}
