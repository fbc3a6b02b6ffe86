/**
 * The cache engine, as a specification: Effect's own Cache/ScopedCache properties where they apply,
 * the single-flight shapes that used to double-load, TTL, refresh-ahead, stale-if-error, the sweep,
 * bounds by count and by weight, and a seeded random run that checks the invariants throughout.
 * Time is TestClock's; the lookups are counting doubles (the caller's code), the engine is real.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cache, Cause, Deferred, Duration, Effect, Either, Exit, Fiber, Metric, Option, Scope, TestClock } from "effect"
import * as LoadingCache from "../../src/cache/LoadingCache.js"
import * as M from "../../src/metrics.js"
import { countingLookup } from "../support/doubles.js"
import { eventually, parked } from "../support/eventually.js"

/** The caller's lookup: `key#version` values, "lookup of key failed" errors; counts, holds and fails on demand. */
const counting = countingLookup({ value: (key, version) => `${key}#${version}`, error: (key) => `lookup of ${key} failed` })

type Options = Partial<LoadingCache.LoadingCacheOptions<string, string, string>>

const setup = (options: Options = {}) =>
  Effect.gen(function* () {
    const lookup = yield* counting
    const cache = yield* LoadingCache.makeWith<string, string, string>({
      capacity: 100,
      lookup: lookup.lookup,
      timeToLive: Exit.match({ onFailure: () => "1 second", onSuccess: () => "60 seconds" }),
      ...options
    })
    return { cache, lookup }
  })


describe("LoadingCache is an Effect Cache", () => {
  it.scoped("can be used wherever a Cache is expected", () =>
    Effect.gen(function* () {
      const { cache } = yield* setup()
      const useCache = (c: Cache.Cache<string, string, string>) => c.get("a")
      expect(yield* useCache(cache)).toBe("a#1")
      expect(Cache.CacheTypeId in cache).toBe(true)
    }))

  it.scoped("does not count a hit for an expired entry (Effect's Cache test)", () =>
    Effect.gen(function* () {
      const { cache } = yield* setup({ timeToLive: () => "1 second" })
      yield* cache.get("a")
      yield* TestClock.adjust("2 seconds")
      yield* cache.get("a")
      expect(yield* cache.cacheStats).toEqual({ hits: 0, misses: 2, size: 1 })
    }))

  it.scoped("puts nothing in the cache before the effect returned by get runs", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      const get = cache.get("a")
      expect(yield* cache.contains("a")).toBe(false)
      expect(lookup.total()).toBe(0)
      yield* get
      expect(yield* cache.contains("a")).toBe(true)
    }))

  it.scoped("invalidate does nothing before its effect runs, then removes the entry", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      yield* cache.get("a")
      const invalidate = cache.invalidate("a")
      expect(yield* cache.contains("a")).toBe(true)
      yield* invalidate
      expect(yield* cache.contains("a")).toBe(false)
      expect(yield* cache.get("a")).toBe("a#2")
      expect(lookup.loads.get("a")).toBe(2)
    }))

  it.scoped("sequential and concurrent gets of one key run one lookup", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      for (let i = 0; i < 10; i++) yield* cache.get("a")
      yield* lookup.hold
      const all = yield* Effect.fork(Effect.all(Array.from({ length: 1000 }, () => cache.get("b")), { concurrency: "unbounded" }))
      yield* parked(all)
      yield* lookup.release
      expect(new Set(yield* Fiber.join(all)).size).toBe(1)
      expect([lookup.loads.get("a"), lookup.loads.get("b")]).toEqual([1, 1])
    }))

  it.scoped("caches a failure for its own TTL, then looks up again", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      yield* lookup.fail(true)
      expect(yield* Effect.flip(cache.get("a"))).toBe("lookup of a failed")
      yield* lookup.fail(false)
      yield* TestClock.adjust("999 millis")
      expect(yield* Effect.flip(cache.get("a"))).toBe("lookup of a failed")
      expect(lookup.loads.get("a")).toBe(1)
      yield* TestClock.adjust("1 millis")
      expect(yield* cache.get("a")).toBe("a#1")
      expect(lookup.loads.get("a")).toBe(2)
    }))

  it.scoped("keeps nothing when the TTL is zero", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup({ timeToLive: () => 0 })
      yield* cache.get("a")
      yield* cache.get("a")
      expect(lookup.loads.get("a")).toBe(2)
      expect(yield* cache.size).toBe(0)
    }))

  it.scoped("getOption: None when absent, Some when a load is pending (it waits)", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      expect(yield* cache.getOption("a")).toEqual(Option.none())
      expect(lookup.total()).toBe(0)
      yield* lookup.hold
      const loading = yield* Effect.fork(cache.get("a"))
      yield* parked(loading)
      const option = yield* Effect.fork(cache.getOption("a"))
      yield* lookup.release
      expect(yield* Fiber.join(option)).toEqual(Option.some("a#1"))
      yield* Fiber.join(loading)
    }))

  it.scoped("getOptionComplete: None while pending, Some once complete", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      yield* lookup.hold
      const loading = yield* Effect.fork(cache.get("a"))
      yield* parked(loading)
      expect(yield* cache.getOptionComplete("a")).toEqual(Option.none())
      yield* lookup.release
      yield* Fiber.join(loading)
      expect(yield* cache.getOptionComplete("a")).toEqual(Option.some("a#1"))
    }))

  it.scoped("getEither: Left when served from the cache, Right when loaded", () =>
    Effect.gen(function* () {
      const { cache } = yield* setup()
      expect(yield* cache.getEither("a")).toEqual(Either.right("a#1"))
      expect(yield* cache.getEither("a")).toEqual(Either.left("a#1"))
    }))

  it.scoped("set, contains, entryStats, keys, values and entries", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      yield* TestClock.adjust("5 seconds")
      yield* cache.set("a", "given")
      yield* cache.get("b")
      expect(yield* cache.get("a")).toBe("given")
      expect(lookup.loads.get("a")).toBeUndefined()
      expect(yield* cache.contains("a")).toBe(true)
      expect(yield* cache.entryStats("a")).toEqual(Option.some(Cache.makeEntryStats(5000)))
      expect(yield* cache.entryStats("z")).toEqual(Option.none())
      expect((yield* cache.keys).sort()).toEqual(["a", "b"])
      expect((yield* cache.values).sort()).toEqual(["b#1", "given"])
      expect((yield* cache.entries).sort()).toEqual([["a", "given"], ["b", "b#1"]])
      yield* TestClock.adjust("60 seconds")
      expect(yield* cache.keys).toEqual([])
      expect(yield* cache.contains("a")).toBe(false)
    }))

  it.scoped("invalidateWhen drops the entry only if the predicate holds; invalidateAll drops all", () =>
    Effect.gen(function* () {
      const { cache } = yield* setup()
      yield* cache.get("a")
      yield* cache.get("b")
      yield* cache.invalidateWhen("a", (v) => v === "nope")
      expect(yield* cache.contains("a")).toBe(true)
      yield* cache.invalidateWhen("a", (v) => v === "a#1")
      expect(yield* cache.contains("a")).toBe(false)
      yield* cache.invalidateAll
      expect(yield* cache.size).toBe(0)
      expect((yield* cache.stats).invalidations).toBe(2)
    }))
})

describe("refresh", () => {
  it.scoped("reloads while callers keep the current value, then serves the new one", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      yield* cache.get("a")
      yield* lookup.hold
      const refreshing = yield* Effect.fork(cache.refresh("a"))
      yield* parked(refreshing)
      expect(yield* cache.get("a")).toBe("a#1")
      yield* lookup.release
      yield* Fiber.join(refreshing)
      expect(yield* cache.get("a")).toBe("a#2")
    }))

  it.scoped("loads a missing key, and retries a key whose last load failed", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup({ timeToLive: () => "1 hour" })
      yield* cache.refresh("new")
      expect(yield* cache.getOptionComplete("new")).toEqual(Option.some("new#1"))
      yield* lookup.fail(true)
      yield* Effect.flip(cache.get("b"))
      yield* lookup.fail(false)
      yield* cache.refresh("b")
      expect(yield* cache.get("b")).toBe("b#2")
    }))

  it.scoped("a failed refresh fails the caller and keeps the good value (Effect's replaces it)", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      yield* cache.get("a")
      yield* lookup.fail(true)
      expect(yield* Effect.flip(cache.refresh("a"))).toBe("lookup of a failed")
      expect(yield* cache.get("a")).toBe("a#1")
    }))

  it.scoped("uses reload, with the previous value, when given", () =>
    Effect.gen(function* () {
      const { cache } = yield* setup({ reload: (key, previous) => Effect.succeed(`${previous}+${key}`) })
      yield* cache.get("a")
      yield* cache.refresh("a")
      expect(yield* cache.get("a")).toBe("a#1+a")
      expect((yield* cache.stats).refreshes).toBe(1)
    }))
})

describe("single-flight holds for batches", () => {
  const ids = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `s${from + i}`)

  it.scoped("a key repeated in one getMany loads once", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      const results = yield* cache.getMany(["a", "a"])
      expect(results).toEqual([Either.right("a#1"), Either.right("a#1")])
      expect(lookup.loads.get("a")).toBe(1)
    }))

  it.scoped("two overlapping getMany after ttl reload each shared key once (was 30 loads for 20 ids)", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      yield* cache.getMany(ids(0, 20))
      yield* TestClock.adjust("61 seconds")
      yield* Effect.all([cache.getMany(ids(0, 20)), cache.getMany(ids(10, 20))], { concurrency: "unbounded" })
      expect(lookup.total()).toBe(40)
    }))

  it.scoped("eight overlapping getMany over 200 ids load each id once, cold and after ttl (was 368)", () =>
    Effect.gen(function* () {
      const lookup = yield* counting
      const slow = (key: string) => Effect.zipRight(Effect.yieldNow(), lookup.lookup(key))
      const cache = yield* LoadingCache.makeWith({ capacity: 256, lookup: slow, timeToLive: () => "60 seconds" })
      const all = ids(0, 200)
      const batches = Array.from({ length: 8 }, (_, k) => all.filter((_, i) => k === 0 || i % 8 === k))
      yield* Effect.all(batches.map((b) => cache.getMany(b)), { concurrency: "unbounded" })
      expect(lookup.total()).toBe(200)
      yield* TestClock.adjust("61 seconds")
      yield* Effect.all(batches.map((b) => cache.getMany(b)), { concurrency: "unbounded" })
      expect(lookup.total()).toBe(400)
    }))

  it.scoped("in the refresh-ahead window, overlapping batches start one background reload per id (was 354)", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup({ capacity: 256, refreshAhead: 0.5 })
      const all = ids(0, 200)
      yield* cache.getMany(all)
      yield* TestClock.adjust("31 seconds")
      yield* lookup.hold
      const batches = Array.from({ length: 8 }, (_, k) => all.filter((_, i) => k === 0 || i % 8 === k))
      const served = yield* Effect.all(batches.map((b) => cache.getMany(b)), { concurrency: "unbounded" })
      expect(served.flat().every((r) => Either.isRight(r) && r.right.endsWith("#" + r.right.split("#")[1]))).toBe(true)
      yield* lookup.release
      yield* eventually(Effect.map(cache.stats, (s) => s.refreshes === 200 && s.loads === 400))
      expect(lookup.total()).toBe(400)
    }))

  it.scoped("get, getMany and refresh of one key share one load", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      yield* lookup.hold
      const fibers = yield* Effect.all([Effect.fork(cache.get("a")), Effect.fork(cache.getMany(["a", "b", "a"])), Effect.fork(cache.refresh("a"))])
      yield* parked(...fibers)
      yield* lookup.release
      for (const f of fibers) yield* Fiber.join(f as Fiber.Fiber<unknown, unknown>)
      expect(lookup.loads.get("a")).toBe(1)
    }))

  it.scoped("with lookupMany, a getMany loads the keys it misses in one call, sharing loads already under way", () =>
    Effect.gen(function* () {
      const batches: Array<ReadonlyArray<string>> = []
      const gate = yield* Deferred.make<void>()
      const cache = yield* LoadingCache.makeWith({
        capacity: 100,
        lookup: (key: string) => Effect.as(Deferred.await(gate), `${key}!`),
        lookupMany: (keys: ReadonlyArray<string>) => Effect.sync(() => (batches.push(keys), keys.map((k) => `${k}*`))),
        timeToLive: () => "1 minute"
      })
      const single = yield* Effect.fork(cache.get("b"))
      yield* parked(single)
      const many = yield* Effect.fork(cache.getMany(["a", "b", "c", "a"]))
      yield* parked(many)
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.join(single)).toBe("b!")
      expect(yield* Fiber.join(many)).toEqual([Either.right("a*"), Either.right("b!"), Either.right("c*"), Either.right("a*")])
      expect(batches).toEqual([["a", "c"]])
      expect((yield* cache.stats).loads).toBe(3)
    }))

  it.scoped("a lookupMany that answers the wrong number of values fails every key of the batch", () =>
    Effect.gen(function* () {
      const cache = yield* LoadingCache.makeWith({
        capacity: 100,
        lookup: (key: string) => Effect.succeed(key),
        lookupMany: () => Effect.succeed(["only one"]),
        timeToLive: () => "1 minute"
      })
      const exit = yield* Effect.exit(cache.getMany(["a", "b"]))
      expect(Exit.isFailure(exit) && String(exit.cause)).toContain("answered 1 values for 2 keys")
      expect(yield* cache.size).toBe(0)
    }))

  it.scoped("getManyWith loads the keys it misses in one call of its own lookupMany, sharing loads already under way", () =>
    Effect.gen(function* () {
      const own: Array<ReadonlyArray<string>> = []
      const cacheMany: Array<ReadonlyArray<string>> = []
      const gate = yield* Deferred.make<void>()
      const cache = yield* LoadingCache.makeWith({
        capacity: 100,
        lookup: (key: string) => Effect.as(Deferred.await(gate), `${key}!`),
        lookupMany: (keys: ReadonlyArray<string>) => Effect.sync(() => (cacheMany.push(keys), keys.map((k) => `${k}*`))),
        timeToLive: () => "1 minute"
      })
      const single = yield* Effect.fork(cache.get("b"))
      yield* parked(single)
      const many = yield* Effect.fork(cache.getManyWith(["a", "b", "c", "a"], (keys) => Effect.sync(() => (own.push(keys), keys.map((k) => `${k}+`)))))
      yield* parked(many)
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.join(single)).toBe("b!")
      expect(yield* Fiber.join(many)).toEqual([Either.right("a+"), Either.right("b!"), Either.right("c+"), Either.right("a+")])
      expect(own).toEqual([["a", "c"]])
      expect(cacheMany).toEqual([])
      // Held now: served without a load; a lone miss is a batch of one.
      expect(yield* cache.getManyWith(["c", "d"], (keys) => Effect.sync(() => (own.push(keys), keys.map((k) => `${k}-`))))).toEqual([Either.right("c+"), Either.right("d-")])
      expect(own).toEqual([["a", "c"], ["d"]])
      expect((yield* cache.stats).loads).toBe(4)
    }))

  it.scoped("getManyWith's lookupMany answering the wrong number of values fails every key of the batch, and a failure each key", () =>
    Effect.gen(function* () {
      const cache = yield* LoadingCache.makeWith({ capacity: 100, lookup: (key: string): Effect.Effect<string, string> => Effect.succeed(key), timeToLive: () => "1 minute" })
      const exit = yield* Effect.exit(cache.getManyWith(["a", "b"], () => Effect.succeed(["only one"])))
      expect(Exit.isFailure(exit) && String(exit.cause)).toContain("answered 1 values for 2 keys")
      expect(yield* cache.getManyWith(["c", "d"], () => Effect.fail("down"))).toEqual([Either.left("down"), Either.left("down")])
      expect(yield* cache.size).toBe(0)
    }))

  it.scoped("getMany returns each key's value or error in order, and never fails as a whole", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      yield* cache.get("a")
      yield* lookup.fail(true)
      expect(yield* cache.getMany(["b", "a"])).toEqual([Either.left("lookup of b failed"), Either.right("a#1")])
    }))
})

describe("interruption", () => {
  it.scoped("an interrupted first caller leaves the other waiters and the entry unharmed (Effect's fails them)", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      yield* lookup.hold
      const first = yield* Effect.fork(cache.get("a"))
      yield* parked(first)
      const second = yield* Effect.fork(cache.get("a"))
      yield* parked(second)
      yield* Fiber.interrupt(first)
      yield* lookup.release
      expect(yield* Fiber.join(second)).toBe("a#1")
      expect(yield* cache.get("a")).toBe("a#1")
      expect(lookup.loads.get("a")).toBe(1)
    }))

  it.scoped("a caller that times out does not stop the load", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      yield* lookup.hold
      const timedOut = yield* Effect.fork(Effect.timeout(cache.get("a"), "1 second"))
      yield* parked(timedOut)
      yield* TestClock.adjust("1 second")
      expect(Exit.isFailure(yield* Fiber.await(timedOut))).toBe(true)
      yield* lookup.release
      yield* eventually(cache.contains("a"))
      expect(yield* cache.get("a")).toBe("a#1")
      expect(lookup.loads.get("a")).toBe(1)
    }))

  it.scoped("a load under way when invalidated answers its waiters but is not cached", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      yield* lookup.hold
      const waiter = yield* Effect.fork(cache.get("a"))
      yield* parked(waiter)
      yield* cache.invalidate("a")
      yield* lookup.release
      expect(yield* Fiber.join(waiter)).toBe("a#1")
      expect(yield* cache.get("a")).toBe("a#2")
    }))

  it.live("closing the cache's scope interrupts its loads and their waiters", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const lookup = yield* counting
      const cache = yield* LoadingCache.makeWith({ capacity: 10, lookup: lookup.lookup, timeToLive: () => "1 minute" }).pipe(Scope.extend(scope))
      yield* lookup.hold
      const waiter = yield* Effect.fork(cache.get("a"))
      yield* parked(waiter)
      yield* Scope.close(scope, Exit.void)
      const exit = yield* Fiber.await(waiter)
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(Exit.isInterrupted(yield* Effect.exit(cache.get("b")))).toBe(true)
    }))
})

describe("time", () => {
  it.scoped("reloads after the TTL", () =>
    Effect.gen(function* () {
      const { cache } = yield* setup()
      yield* cache.get("a")
      yield* TestClock.adjust("59 seconds")
      expect(yield* cache.get("a")).toBe("a#1")
      yield* TestClock.adjust("1 second")
      expect(yield* cache.get("a")).toBe("a#2")
    }))

  it.scoped("refreshes ahead in the background: callers never wait, one reload", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup({ refreshAhead: 0.5 })
      yield* cache.get("a")
      yield* TestClock.adjust("31 seconds")
      yield* lookup.hold
      for (let i = 0; i < 50; i++) expect(yield* cache.get("a")).toBe("a#1")
      yield* lookup.release
      yield* eventually(Effect.map(cache.get("a"), (v) => v === "a#2"))
      expect(lookup.loads.get("a")).toBe(2)
      expect((yield* cache.stats).refreshes).toBe(1)
    }))

  it.scoped("serves the last value while reloading it fails, for staleIfError past the TTL", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup({ staleIfError: "30 seconds" })
      yield* cache.get("a")
      yield* lookup.fail(true)
      yield* TestClock.adjust("65 seconds")
      expect(yield* cache.get("a")).toBe("a#1") // waited for the reload, which failed: stale
      expect(yield* cache.get("a")).toBe("a#1") // within the failure TTL: stale at once, no new reload
      expect(lookup.loads.get("a")).toBe(2)
      yield* TestClock.adjust("1 second")
      expect(yield* cache.get("a")).toBe("a#1") // retried, failed again
      expect(lookup.loads.get("a")).toBe(3)
      yield* TestClock.adjust("30 seconds") // 96 s: past ttl + staleIfError
      expect(yield* Effect.flip(cache.get("a"))).toBe("lookup of a failed")
      const stats = yield* cache.stats
      expect(stats.staleServed).toBe(3)
      expect(stats.expirations).toBe(1)
    }))

  it.scoped("the sweep drops what can no longer be served, without an access", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup({ staleIfError: "30 seconds", sweepInterval: "10 seconds" })
      yield* cache.get("a")
      yield* cache.get("b")
      yield* lookup.fail(true)
      yield* Effect.flip(cache.get("c"))
      yield* TestClock.adjust("10 seconds")
      expect(yield* cache.contains("c")).toBe(false)
      yield* TestClock.adjust("70 seconds")
      expect(yield* cache.size).toBe(2) // expired, still servable as stale-if-error
      yield* TestClock.adjust("10 seconds")
      expect(yield* cache.size).toBe(0)
      expect((yield* cache.stats).expirations).toBe(2)
    }))
})

describe("bounds", () => {
  it.scoped("never holds more than capacity entries", () =>
    Effect.gen(function* () {
      const { cache } = yield* setup({ capacity: 10 })
      for (let i = 0; i < 300; i++) {
        yield* cache.get(`k${(i * 7) % 37}`)
        expect(yield* cache.size).toBeLessThanOrEqual(10)
      }
      expect((yield* cache.stats).evictions).toBeGreaterThan(0)
    }))

  it.scoped("keeps a popular entry through a scan of one-off keys (where LRU loses it every time)", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup({ capacity: 10 })
      // "hot" comes back every 15th request, after 14 one-off keys: an LRU of 10 has evicted it by
      // then and loads it 100 times. The cache starts as an LRU, and W-TinyLFU, which keeps it,
      // takes over once it has clearly hit more.
      for (let i = 0; i < 1_500; i++) yield* cache.get(i % 15 === 0 ? "hot" : `scan-${i}`)
      expect((yield* cache.stats).evictionPolicy).toBe("w-tinylfu")
      expect(lookup.loads.get("hot")).toBeLessThan(25)
    }))

  it.scoped("a working set that moves costs what an LRU pays, from the first phase", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup({ capacity: 50 })
      // Each phase reads 40 new keys round-robin 25 times; older phases never come back. An LRU of
      // 50 loads each key once; W-TinyLFU would refuse the newcomers while the old phase looks
      // popular, so the cache stays an LRU (EvictionPolicy.test.ts tests the climbing window).
      const loadsPerPhase: Array<number> = []
      for (let phase = 0; phase < 12; phase++) {
        const before = lookup.total()
        for (let round = 0; round < 25; round++) for (let k = 0; k < 40; k++) yield* cache.get(`p${phase}-${k}`)
        loadsPerPhase.push(lookup.total() - before)
      }
      expect(loadsPerPhase).toEqual(Array(12).fill(40))
      expect((yield* cache.stats).evictionPolicy).toBe("lru")
    }))

  it.scoped("bounds the total weight with a weigher; a value heavier than the bound is not kept", () =>
    Effect.gen(function* () {
      const lookup = (key: string) => Effect.succeed(key)
      const cache = yield* LoadingCache.makeWith({
        capacity: Infinity,
        lookup,
        timeToLive: () => "1 hour",
        weigher: (_key: string, value: string) => value.length,
        maxWeight: 100
      })
      for (let i = 0; i < 200; i++) {
        yield* cache.get("x".repeat(1 + (i % 30)) + i)
        expect((yield* cache.stats).weight).toBeLessThanOrEqual(100)
      }
      yield* cache.get("y".repeat(101))
      expect(yield* cache.contains("y".repeat(101))).toBe(false)
      expect((yield* cache.stats).weight).toBeLessThanOrEqual(100)
    }))

  it.scoped("a reload that makes a value heavier re-applies the bound", () =>
    Effect.gen(function* () {
      let size = 10
      const cache = yield* LoadingCache.makeWith({
        capacity: Infinity,
        lookup: (key: string) => Effect.sync(() => key.repeat(size)),
        timeToLive: () => "1 hour",
        weigher: (_key: string, value: string) => value.length,
        maxWeight: 50
      })
      yield* cache.getMany(["a", "b", "c", "d"])
      expect((yield* cache.stats).weight).toBe(40)
      size = 30
      yield* cache.refresh("a")
      expect((yield* cache.stats).weight).toBeLessThanOrEqual(50)
    }))

  it.scoped("a weigher that returns nonsense fails that load loudly and holds nothing", () =>
    Effect.gen(function* () {
      const cache = yield* LoadingCache.makeWith({
        capacity: 10,
        lookup: (key: string) => Effect.succeed(key),
        timeToLive: () => "1 hour",
        weigher: () => Number.NaN,
        maxWeight: 10
      })
      const exit = yield* Effect.exit(cache.get("a"))
      expect(Exit.isFailure(exit) && String(Exit.isFailure(exit) ? exit.cause : "")).toContain("weigher returned NaN")
      expect(yield* cache.size).toBe(0)
    }))

  it.effect("refuses options that make no sense, naming the option", () =>
    Effect.gen(function* () {
      const bad: Array<[Options, string]> = [
        [{ capacity: -1 }, "capacity must be a whole number ≥ 0 or Infinity (got -1)"],
        [{ capacity: 1.5 }, "capacity must be a whole number ≥ 0 or Infinity (got 1.5)"],
        [{ maxWeight: 10 }, "maxWeight and weigher go together (got 10)"],
        [{ weigher: () => 1, maxWeight: 0 }, "maxWeight must be > 0 (got 0)"],
        [{ refreshAhead: 2 }, "refreshAhead must be a fraction in (0, 1] (got 2)"],
        [{ lookupConcurrency: 0 }, "lookupConcurrency must be a whole number ≥ 1 (got 0)"]
      ]
      for (const [options, message] of bad) {
        const exit = yield* Effect.exit(
          Effect.scoped(LoadingCache.makeWith({ capacity: 10, lookup: (k: string) => Effect.succeed(k), timeToLive: () => 1, ...options }))
        )
        const defect = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
        expect(defect, JSON.stringify(options)).toBeInstanceOf(Error)
        expect((defect as Error).message).toBe(`LoadingCache: ${message}`)
      }
    }))
})

describe("invariants under a seeded random run of 10,000 operations", () => {
  it.scoped("bounds hold and the counters add up", () =>
    Effect.gen(function* () {
      let seed = 12345
      const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32)
      let lookups = 0
      const cache = yield* LoadingCache.makeWith({
        capacity: 40,
        lookup: (key: number) =>
          Effect.suspend(() => {
            lookups++
            return key % 17 === 0 ? Effect.fail("unlucky") : Effect.succeed("v".repeat(1 + (key % 9)))
          }),
        timeToLive: Exit.match({ onFailure: () => "2 seconds", onSuccess: () => "30 seconds" }),
        weigher: (_key: number, value: string) => value.length,
        maxWeight: 150,
        refreshAhead: 0.5,
        staleIfError: "10 seconds",
        sweepInterval: "5 seconds"
      })
      let requests = 0
      for (let op = 0; op < 10_000; op++) {
        const key = Math.floor(random() * random() * 120)
        const roll = random()
        if (roll < 0.6) {
          requests++
          yield* Effect.either(cache.get(key))
        } else if (roll < 0.75) {
          const keys = [key, (key * 7) % 120, key]
          requests += keys.length
          yield* cache.getMany(keys)
        } else if (roll < 0.8) {
          yield* Effect.either(cache.refresh(key))
        } else if (roll < 0.85) {
          yield* cache.invalidate(key)
        } else if (roll < 0.87) {
          yield* cache.set(key, "s")
        } else if (roll < 0.995) {
          yield* TestClock.adjust(Duration.millis(Math.floor(random() * 500)))
        } else {
          yield* cache.invalidateAll
        }
        const stats = yield* cache.stats
        expect(stats.size).toBeLessThanOrEqual(40)
        expect(stats.weight).toBeLessThanOrEqual(150)
      }
      yield* eventually(Effect.map(cache.stats, (s) => s.loads === lookups))
      const stats = yield* cache.stats
      expect(stats.hits + stats.misses).toBe(requests)
      expect(stats.loads).toBe(lookups)
      expect(stats.evictions).toBeGreaterThan(0)
    }))
})

describe("metrics", () => {
  it.scoped("reports its counters and gauges under its cache label", () =>
    Effect.gen(function* () {
      const label = `test-${Math.random()}`
      const { cache } = yield* setup({ capacity: 2, label })
      for (const key of ["a", "a", "b", "c", "a", "d", "e"]) yield* cache.get(key)
      yield* cache.invalidate("a")
      const stats = yield* cache.stats
      const count = (m: Metric.Metric.Counter<number>) => Effect.map(Metric.value(M.tagged(m, label)), (s) => s.count)
      expect(yield* count(M.cacheHits)).toBe(stats.hits)
      expect(yield* count(M.cacheMisses)).toBe(stats.misses)
      expect(yield* count(M.cacheLoads)).toBe(stats.loads)
      expect(yield* count(M.cacheEvictions)).toBe(stats.evictions)
      expect(yield* count(M.cacheInvalidations)).toBe(stats.invalidations)
      expect(stats.evictions).toBeGreaterThan(0)
      expect((yield* Metric.value(M.tagged(M.cacheSize, label))).value).toBe(stats.size)
      expect((yield* Metric.value(M.tagged(M.cacheLoadDuration, label))).count).toBe(stats.loads)
    }))
})
