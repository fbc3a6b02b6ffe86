/**
 * What users would run without this project: the Pantheon adapter's flow (getStoreManagers on every
 * compile) and the original task's sketch (a TTL map keyed by the joined source ids). Both use the
 * same pure compile steps as ours, so the rows differ only in how managers are obtained.
 */
import { assemble, buildSeeds, combine, defaultResolvers, normalizeRequest } from "../../src/domain/compile.js"
import type { Message, StoreEntry } from "../../src/domain/schemas.js"
import { Either } from "effect"
import type { DualStoreManagerLike } from "../../src/stores/promise.js"

type GetManagers = () => Promise<ReadonlyArray<DualStoreManagerLike>>

const compileWith = async (managers: ReadonlyArray<DualStoreManagerLike>, opts: unknown): Promise<Array<Message>> => {
  const request = Either.getOrThrow(normalizeRequest(opts))
  const ids = new Set(request.sources.map((s) => s.id))
  const matched = managers.filter((m) => ids.has(m.name))
  if (matched.length === 0) return []
  const recent = (await Promise.all(matched.map((m) => m.getMostRecent(request.recentLimit).catch(() => [])))) as Array<Array<StoreEntry>>
  const seeds = buildSeeds(request.texts, recent.flat(), request.queryLimit)
  let relevant: Array<Array<StoreEntry>> = []
  let images: Array<Array<StoreEntry>> = []
  if (seeds.length > 0) {
    relevant = (await Promise.all(matched.map((m) => m.getMostRelevant(seeds, request.limit).catch(() => [])))) as Array<Array<StoreEntry>>
    images = (await Promise.all(matched.map((m) => m.getMostRelevant(seeds, request.limit, { type: "image" }).catch(() => [])))) as Array<Array<StoreEntry>>
  }
  return assemble(combine(relevant, recent, images), { limit: request.limit, managers: matched.length, resolvers: defaultResolvers }).messages
}

/** The Pantheon adapter today: every compile re-creates every manager. */
export const uncachedAdapter = (getStoreManagers: GetManagers) => ({
  compile: async (opts: unknown) => compileWith(await getStoreManagers(), opts),
  hitRate: () => 0
})

/** The original task's `ManagerCache` sketch: `managers_${ids.join(",")}` → managers, for `ttl`. */
export const sketchAdapter = (getStoreManagers: GetManagers, config = { ttl: 60_000, maxSize: 10 }) => {
  const cache = new Map<string, { managers: ReadonlyArray<DualStoreManagerLike>; timestamp: number }>()
  let hits = 0
  let misses = 0
  const get = async (key: string) => {
    const cached = cache.get(key)
    const now = Date.now()
    if (cached && now - cached.timestamp < config.ttl) {
      hits++
      return cached.managers
    }
    misses++
    const managers = await getStoreManagers()
    cache.set(key, { managers, timestamp: now })
    for (const [k, v] of cache) if (now - v.timestamp > config.ttl) cache.delete(k)
    return managers
  }
  return {
    compile: async (opts: { sources: ReadonlyArray<{ id: string }> }) => compileWith(await get(`managers_${opts.sources.map((s) => s.id).join(",")}`), opts),
    hitRate: () => hits / Math.max(1, hits + misses)
  }
}
