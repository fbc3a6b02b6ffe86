/**
 * w5: the heap the manager cache holds: 10,000 entries, and after 1,000,000 gets over 100,000 ids at
 * capacity 10,000; for contrast, Effect's `Cache` evicting through `invalidate` (the road not taken:
 * its own eviction loses to FIFO, w3), whose internal access list keeps every key it saw.
 */
import { Cache, Effect, Either } from "effect"
import * as LoadingCache from "../../src/cache/LoadingCache.js"
import { decodeCacheConfig } from "../../src/domain/config.js"
import { managerCacheOptions } from "../../src/services/ManagerCache.js"
import type { StoreManager } from "../../src/services/StoreManager.js"
import { heap, results, table } from "../lib/report.js"
import { prng } from "../lib/workload.js"

const handle = (id: string) => ({ name: id }) as unknown as StoreManager
const config = Either.getOrThrow(decodeCacheConfig({ capacity: 10_000, ttl: "1 hour" }))

/**
 * The heap a cache holds: the heap with it filled, less the heap once its scope has closed and it is
 * garbage (both after full collections). Measuring against a heap taken before it was built counted
 * whatever the previous step left for the collector, and swung by megabytes from run to run.
 */
const retained = async (fill: (cache: LoadingCache.LoadingCache<string, StoreManager, unknown>) => Effect.Effect<void, unknown>, label: string) => {
  let withCache = 0
  const stats = await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const cache = yield* LoadingCache.makeWith(managerCacheOptions(config, (id) => Effect.succeed(handle(id)), label))
        yield* fill(cache)
        withCache = heap()
        return yield* cache.stats
      })
    )
  )
  return { bytes: withCache - heap(), stats }
}

export const w5 = async () => {
  if (!global.gc) console.warn("w5: run node with --expose-gc for exact figures")
  const at10k = await retained((cache) => Effect.forEach(Array.from({ length: 10_000 }, (_, i) => `source-${i}`), (id) => cache.get(id), { discard: true }), "bench-w5a")
  if (at10k.stats.size !== 10_000) throw new Error("w5: the cache does not hold 10,000 entries")
  const heapBytesAt10k = at10k.bytes
  const random = prng(99)
  const churned = await retained(
    (cache) =>
      Effect.gen(function* () {
        for (let i = 0; i < 1_000_000; i++) yield* cache.get(`source-${Math.floor(random() * 100_000)}`)
      }),
    "bench-w5b"
  )
  const churn = { bytes: churned.bytes, evictions: churned.stats.evictions, size: churned.stats.size }
  const random2 = prng(99)
  const effectCacheInvalidateChurnBytes = await Effect.runPromise(
    Effect.gen(function* () {
      const before = heap()
      const cache = yield* Cache.make({ capacity: Number.MAX_SAFE_INTEGER, timeToLive: "1 hour", lookup: (id: string) => Effect.succeed(handle(id)) })
      const lru = new Map<string, true>()
      for (let i = 0; i < 1_000_000; i++) {
        const id = `source-${Math.floor(random2() * 100_000)}`
        if (lru.delete(id)) lru.set(id, true)
        else {
          lru.set(id, true)
          if (lru.size > 10_000) {
            const victim = lru.keys().next().value!
            lru.delete(victim)
            yield* cache.invalidate(victim)
          }
        }
        yield* cache.get(id)
      }
      const after = heap()
      if ((yield* cache.size) !== 10_000) throw new Error("w5: the Effect Cache variant does not hold 10,000 entries")
      return after - before
    })
  )
  // The catalog: one key reloaded 10,000 times (Effect's Cache grows one access-list node per reload).
  const catalogReloadBytes = await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const cache = yield* LoadingCache.makeWith({ capacity: 1, lookup: () => Effect.succeed([1, 2, 3]), timeToLive: () => "1 hour", label: "bench-w5c" })
        yield* cache.get("catalog")
        const before = heap()
        for (let i = 0; i < 10_000; i++) {
          yield* cache.invalidate("catalog")
          yield* cache.get("catalog")
        }
        return heap() - before
      })
    )
  )
  const row = {
    heapBytesAt10k,
    heapBytesAfterChurn: churn.bytes,
    churnEvictions: churn.evictions,
    churnSize: churn.size,
    effectCacheInvalidateChurnBytes,
    catalogReloadBytes
  }
  results.w5 = row
  table("w5: heap held by the cache (bytes)", [row])
}
