import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Layer, Metric, TestClock } from "effect"
import * as LoadingCache from "../src/cache/LoadingCache.js"
import { decodeCacheConfig, type CacheConfigInput } from "../src/domain/config.js"
import * as M from "../src/metrics.js"
import { DataWritten, Invalidated, Resync, SourceChanged } from "../src/domain/events.js"
import { managersBackend } from "../src/layers/backends.js"
import { PersistenceAdapterLive } from "../src/layers/PersistenceAdapterLive.js"
import { ManagerCache, managerCacheOptions } from "../src/services/ManagerCache.js"
import { StoreEvents } from "../src/services/StoreEvents.js"
import { StoreManagerRegistry } from "../src/services/StoreManagerRegistry.js"
import { Embedder } from "../src/embedding/Embedder.js"
import type { StoreManager } from "../src/services/StoreManager.js"
import { PgliteClient } from "../src/stores/sql/PgliteClient.js"
import { SqlStore } from "../src/stores/sql/SqlStore.js"
import { cannedManager, makeLookup, type CannedManager } from "./support/doubles.js"
import { eventually } from "./support/eventually.js"

const config = (input: CacheConfigInput = {}) => Either.getOrThrow(decodeCacheConfig({ ttl: "60 seconds", sweepInterval: "10 seconds", ...input }))

const setup = (input: CacheConfigInput = {}, label = "managers") =>
  Effect.gen(function* () {
    const lookup = yield* makeLookup
    const cache = yield* LoadingCache.makeWith(managerCacheOptions(config(input), lookup.lookup, label))
    return { cache, lookup }
  })

const version = (m: unknown) => (m as CannedManager).version

/** Lets the cache's own fibers run until `done` holds (bounded, no clock involved). */
const settle = eventually

describe("ManagerCache", () => {
  it.scoped("serves repeated gets from one load and counts hits and misses", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      const first = yield* cache.get("a")
      for (let i = 0; i < 9; i++) expect(yield* cache.get("a")).toBe(first)
      expect(lookup.total()).toBe(1)
      const stats = yield* cache.stats
      expect(stats).toMatchObject({ hits: 9, misses: 1, loads: 1, size: 1 })
      expect(stats.hitRate).toBeCloseTo(0.9)
    }))

  it.scoped("reloads after ttl", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup({ ttl: "60 seconds", refreshAhead: 1 })
      const first = yield* cache.get("a")
      yield* TestClock.adjust("59 seconds")
      expect(yield* cache.get("a")).toBe(first)
      yield* TestClock.adjust("1 second")
      const second = yield* cache.get("a")
      expect(second).not.toBe(first)
      expect(lookup.loads.get("a")).toBe(2)
    }))

  it.scoped("refreshes ahead in the background: callers keep the current manager, one reload", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup({ ttl: "60 seconds", refreshAhead: 0.5 })
      const first = yield* cache.get("a")
      yield* TestClock.adjust("31 seconds")
      yield* lookup.hold // the reload will wait: callers must not
      expect(yield* cache.get("a")).toBe(first)
      yield* settle(Effect.sync(() => lookup.loads.get("a") === 2)) // the reload has started and is held
      for (let i = 0; i < 50; i++) expect(yield* cache.get("a")).toBe(first)
      expect(lookup.loads.get("a")).toBe(2)
      yield* lookup.release
      yield* settle(Effect.map(cache.get("a"), (m) => version(m) === 2))
      expect(lookup.loads.get("a")).toBe(2)
      expect((yield* cache.stats).refreshes).toBe(1)
    }))

  it.scoped("keeps serving the last good manager when a refresh fails, for up to staleIfError", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup({ ttl: "60 seconds", refreshAhead: 0.5, staleIfError: "30 seconds", failureTtl: "5 seconds" })
      const first = yield* cache.get("a")
      yield* lookup.fail(true)
      yield* TestClock.adjust("40 seconds")
      expect(yield* cache.get("a")).toBe(first) // triggers the refresh, which fails
      yield* settle(Effect.map(cache.stats, (s) => s.loadFailures === 1))
      expect(yield* cache.get("a")).toBe(first)
      yield* TestClock.adjust("25 seconds") // 65 s: expired, inside stale-if-error
      expect(yield* cache.get("a")).toBe(first)
      const stats = yield* cache.stats
      expect(stats.staleServed).toBeGreaterThanOrEqual(1)
      expect(stats.loadFailures).toBeGreaterThanOrEqual(2)
      yield* TestClock.adjust("30 seconds") // 95 s: past ttl + staleIfError
      const late = yield* Effect.either(cache.get("a"))
      expect(Either.isLeft(late) && late.left._tag).toBe("StoreUnavailable")
    }))

  it.scoped("remembers a failed load for failureTtl and no longer", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup({ failureTtl: "2 seconds" })
      yield* lookup.fail(true)
      expect(Either.isLeft(yield* Effect.either(cache.get("a")))).toBe(true)
      yield* lookup.fail(false)
      yield* TestClock.adjust("1 second")
      expect(Either.isLeft(yield* Effect.either(cache.get("a")))).toBe(true)
      expect(lookup.loads.get("a")).toBe(1)
      yield* TestClock.adjust("1 second")
      expect(Either.isRight(yield* Effect.either(cache.get("a")))).toBe(true)
      expect(lookup.loads.get("a")).toBe(2)
    }))

  it.scoped("never holds more than capacity entries", () =>
    Effect.gen(function* () {
      const { cache } = yield* setup({ capacity: 10 })
      for (let i = 0; i < 100; i++) {
        yield* cache.get(`k${i % 37}`)
        expect((yield* cache.stats).size).toBeLessThanOrEqual(10)
      }
      expect((yield* cache.stats).evictions).toBeGreaterThan(0)
    }))

  it.scoped("starts as an LRU: evicts the least recently used manager", () =>
    Effect.gen(function* () {
      const { cache } = yield* setup({ capacity: 4 })
      for (const id of ["a", "b", "c", "x"]) yield* cache.get(id)
      yield* cache.get("a") // order, least recent first: b, c, x, a
      for (let i = 0; i < 5; i++) yield* cache.get("d") // evicts b
      yield* cache.get("e") // evicts c
      expect([...(yield* cache.keys)].sort()).toEqual(["a", "d", "e", "x"])
      expect((yield* cache.stats).evictionPolicy).toBe("lru")
    }))

  it.scoped("keeps a popular manager through a scan of one-off sources, once W-TinyLFU has shown it wins", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup({ capacity: 10 })
      // "hot" every 15th request: an LRU of 10 has always evicted it by then (100 loads).
      for (let i = 0; i < 1_500; i++) yield* cache.get(i % 15 === 0 ? "hot" : `scan-${i}`)
      expect((yield* cache.stats).evictionPolicy).toBe("w-tinylfu")
      expect(lookup.loads.get("hot")).toBeLessThan(25)
    }))

  it.scoped("sweeps entries that can no longer be served without waiting for an access", () =>
    Effect.gen(function* () {
      const { cache } = yield* setup({ ttl: "60 seconds", staleIfError: "30 seconds", sweepInterval: "10 seconds" })
      yield* cache.get("a")
      yield* cache.get("b")
      yield* TestClock.adjust("80 seconds")
      expect((yield* cache.stats).size).toBe(2) // expired but still servable as stale-if-error
      yield* TestClock.adjust("10 seconds")
      const stats = yield* cache.stats
      expect(stats.size).toBe(0)
      expect(stats.expirations).toBe(2)
    }))

  it.scoped("invalidate drops one entry, invalidateAll every entry", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      yield* cache.get("a")
      yield* cache.get("b")
      yield* cache.invalidate("a")
      expect(yield* cache.keys).toEqual(["b"])
      yield* cache.get("a")
      expect(lookup.loads.get("a")).toBe(2)
      yield* cache.invalidateAll
      expect((yield* cache.stats).size).toBe(0)
      expect((yield* cache.stats).invalidations).toBe(3)
    }))

  it.scoped("refresh reloads while callers keep the current manager, and fails if the reload fails", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      const first = yield* cache.get("a")
      yield* cache.refresh("a")
      const second = yield* cache.get("a")
      expect(version(second)).toBe(version(first) + 1)
      yield* lookup.fail(true)
      const failed = yield* Effect.either(cache.refresh("a"))
      expect(Either.isLeft(failed)).toBe(true)
      expect(yield* cache.get("a")).toBe(second)
    }))

  it.scoped("reports its metrics under its cache label", () =>
    Effect.gen(function* () {
      const label = `test-${Math.random()}`
      const { cache } = yield* setup({ capacity: 2 }, label)
      // As an LRU (how a cache starts): c evicts a, and the last a evicts b.
      for (const id of ["a", "a", "b", "c", "a"]) yield* cache.get(id)
      yield* cache.invalidate("a")
      const read = (m: Metric.Metric.Counter<number>) => Effect.map(Metric.value(M.tagged(m, label)), (s) => s.count)
      expect(yield* read(M.cacheHits)).toBe(1)
      expect(yield* read(M.cacheMisses)).toBe(4)
      expect(yield* read(M.cacheLoads)).toBe(4)
      expect(yield* read(M.cacheEvictions)).toBe(2)
      expect(yield* read(M.cacheInvalidations)).toBe(1)
      expect((yield* Metric.value(M.tagged(M.cacheSize, label))).value).toBe(1)
      expect((yield* Metric.value(M.tagged(M.cacheLoadDuration, label))).count).toBe(4)
      expect(Duration.toMillis(config().ttl)).toBe(60_000)
    }))
})

describe("ManagerCache releases the managers it drops", () => {
  /** A lookup of managers that record their release (the caller's side: what a warm manager does is tested below). */
  const releasing = Effect.sync(() => {
    const released: Array<string> = []
    let version = 0
    const lookup = (id: string) =>
      Effect.sync((): StoreManager => {
        const name = `${id}#${++version}`
        return { ...cannedManager(id), release: Effect.sync(() => void released.push(name)) }
      })
    return { released, lookup }
  })

  it.scoped("an evicted, an expired, an invalidated and a replaced manager are each released once; held ones are not", () =>
    Effect.gen(function* () {
      const { released, lookup } = yield* releasing
      const cache = yield* LoadingCache.makeWith(managerCacheOptions(config({ capacity: 2, ttl: "60 seconds", refreshAhead: 1 }), lookup, "releasing"))
      yield* cache.get("a")
      yield* cache.get("b")
      yield* cache.get("c") // evicts a (an LRU at first)
      yield* settle(Effect.sync(() => released.length === 1))
      expect(released).toEqual(["a#1"])
      yield* cache.invalidate("b")
      yield* settle(Effect.sync(() => released.length === 2))
      yield* cache.refresh("c") // a manager without `refresh` is reopened: the old one is replaced
      yield* settle(Effect.sync(() => released.length === 3))
      yield* TestClock.adjust("60 seconds")
      yield* cache.get("c") // expired
      yield* settle(Effect.sync(() => released.length === 4))
      expect(released).toEqual(["a#1", "b#2", "c#3", "c#4"])
      expect((yield* cache.values).map((m) => m.name)).toEqual(["c"])
    }))
})

describe("a warm manager the cache drops", () => {
  const Stores = SqlStore.layer({ resultCache: false, backgroundLoadBytes: 1024 }).pipe(
    Layer.provideMerge(Layer.mergeAll(PgliteClient.layer({ dataDir: "memory://" }), Embedder.layerFeatureHashing({ dimensions: 16 }), StoreEvents.layerLocal))
  )

  it.scoped("is released: its background read is stopped and it answers from SQL", () =>
    Effect.gen(function* () {
      const store = yield* SqlStore
      const descriptor = yield* store.registerSource("big")
      const rows = Array.from({ length: 200 }, (_, i) => ({ id: `e${i}`, text: `entry ${i}`, timestamp: 1_700_000_000_000 + i, metadata: {} }))
      yield* (yield* store.open("big")).insert(rows)
      const options = managerCacheOptions(config({ capacity: 2 }), () => store.openDescriptor(descriptor, { warmBytes: 1 << 30 }), "warm-release")
      let released = false
      const cache = yield* LoadingCache.makeWith({ ...options, onRemoval: (key, manager, cause) => Effect.zipRight(options.onRemoval!(key, manager, cause), Effect.sync(() => void (released = true))) })
      const manager = yield* cache.get("big")
      expect(manager.release).toBeDefined()
      yield* cache.invalidate("big")
      yield* settle(Effect.sync(() => released))
      const served = Effect.map(Metric.value(Metric.tagged(M.storeQueries, "served", "sql")), (s) => s.count)
      const before = yield* served
      expect((yield* manager.getMostRecent(2)).map((e) => e.text)).toEqual(["entry 199", "entry 198"])
      expect((yield* served) - before).toBe(1)
    }).pipe(Effect.provide(Stores)))
})

describe("ManagerCache follows StoreEvents", () => {
  const live = PersistenceAdapterLive({ cache: { ttl: "1 hour" } }).pipe(Layer.provideMerge(managersBackend(["a", "b", "c"].map((id) => cannedManager(id)))))
  const loadAll = Effect.gen(function* () {
    const cache = yield* ManagerCache
    yield* (yield* StoreManagerRegistry).catalog
    yield* cache.getMany(["a", "b", "c"])
    return cache
  })
  const keys = Effect.flatMap(ManagerCache, (cache) => Effect.map(cache.keys, (k) => [...k].sort()))

  it.scoped("drops the manager of a source that changed, or that an Invalidated event names", () =>
    Effect.gen(function* () {
      yield* loadAll
      const events = yield* StoreEvents
      yield* events.publish(SourceChanged.make({ id: "a", fingerprint: "2" }))
      yield* events.publish(Invalidated.make({ id: "b" }))
      yield* events.publish(DataWritten.make({ id: "c", seq: 10 }))
      expect(yield* keys).toEqual(["c"])
    }).pipe(Effect.provide(live)))

  it.scoped("drops every manager on Invalidated(null) and on Resync", () =>
    Effect.gen(function* () {
      const events = yield* StoreEvents
      yield* loadAll
      yield* events.publish(Invalidated.make({ id: null }))
      expect(yield* keys).toEqual([])
      yield* loadAll
      yield* events.publish(Resync.make({}))
      expect(yield* keys).toEqual([])
    }).pipe(Effect.provide(live)))
})
