import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Fiber, Metric, TestClock } from "effect"
import { decodeCacheConfig, type CacheConfigInput } from "../src/domain/config.js"
import * as M from "../src/metrics.js"
import { make } from "../src/services/ManagerCache.js"
import { makeLookup, type CannedManager } from "./support/doubles.js"

const config = (input: CacheConfigInput = {}) => Either.getOrThrow(decodeCacheConfig({ ttl: "60 seconds", sweepInterval: "10 seconds", ...input }))

const setup = (input: CacheConfigInput = {}, label = "managers") =>
  Effect.gen(function* () {
    const lookup = yield* makeLookup
    const cache = yield* make(config(input), lookup.lookup, label)
    return { cache, lookup }
  })

const version = (m: unknown) => (m as CannedManager).version

/** Lets the cache's own fibers run until `done` holds (bounded, no clock involved). */
const settle = <E>(done: Effect.Effect<boolean, E>) =>
  Effect.gen(function* () {
    for (let i = 0; i < 1000 && !(yield* done); i++) yield* Effect.yieldNow()
    expect(yield* done).toBe(true)
  })

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

  it.scoped("runs one load for 1,000 concurrent cold gets of a key", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      yield* lookup.hold
      const fiber = yield* Effect.fork(Effect.all(Array.from({ length: 1000 }, () => cache.get("a")), { concurrency: "unbounded" }))
      yield* Effect.yieldNow()
      yield* lookup.release
      const managers = yield* Fiber.join(fiber)
      expect(new Set(managers).size).toBe(1)
      expect(lookup.loads.get("a")).toBe(1)
    }))

  it.scoped("concurrent getMany calls over overlapping ids load each id once", () =>
    Effect.gen(function* () {
      const lookup = yield* makeLookup
      const slow = (id: string) => Effect.zipRight(Effect.yieldNow(), lookup.lookup(id))
      const cache = yield* make(config({ capacity: 256 }), slow)
      const ids = Array.from({ length: 200 }, (_, i) => `s${i}`)
      yield* Effect.all(Array.from({ length: 8 }, (_, k) => cache.getMany(ids.filter((_, i) => k === 0 || i % 8 === k))), { concurrency: "unbounded" })
      expect(lookup.total()).toBe(200)
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
      yield* Effect.yieldNow()
      expect(lookup.loads.get("a")).toBe(2) // the reload has started and is held
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

  it.scoped("an interrupted caller leaves other waiters and the entry unharmed", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      yield* lookup.hold
      const first = yield* Effect.fork(cache.get("a"))
      yield* Effect.yieldNow()
      const second = yield* Effect.fork(cache.get("a"))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(first)
      yield* lookup.release
      const manager = yield* Fiber.join(second)
      expect(yield* cache.get("a")).toBe(manager)
      expect(lookup.loads.get("a")).toBe(1)
    }))

  it.scoped("a caller that times out does not fail the load", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      yield* lookup.hold
      const timedOut = yield* Effect.fork(Effect.timeout(cache.get("a"), "1 second"))
      yield* Effect.yieldNow()
      yield* TestClock.adjust("1 second")
      expect(Either.isLeft(yield* Effect.either(Fiber.join(timedOut)))).toBe(true)
      yield* lookup.release
      yield* settle(Effect.map(cache.keys, (keys) => keys.includes("a")))
      yield* cache.get("a")
      expect(lookup.loads.get("a")).toBe(1)
      expect((yield* cache.stats).hits).toBe(1)
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

  it.scoped("evicts the least recently used entry of the main segment first", () =>
    Effect.gen(function* () {
      // capacity 4 = window 1 + main 3. Make d more popular than anything in main so it is admitted.
      const { cache } = yield* setup({ capacity: 4 })
      for (const id of ["a", "b", "c"]) yield* cache.get(id)
      yield* cache.get("x") // pushes c... into main: main = a, b, c; window = x
      yield* cache.get("a") // a becomes most recent in main: order b, c, a
      for (let i = 0; i < 5; i++) yield* cache.get("d") // d (popular) displaces x from the window, then must beat the victim
      yield* cache.get("e") // d leaves the window, competes with the main LRU victim b and wins
      const keys = yield* cache.keys
      expect(keys).not.toContain("b")
      expect(keys).toEqual(expect.arrayContaining(["a", "c", "d", "e"]))
    }))

  it.scoped("keeps a popular entry through a scan of one-off keys (where LRU would lose it)", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup({ capacity: 10 })
      for (let round = 0; round < 5; round++) yield* cache.get("hot")
      for (let i = 0; i < 200; i++) {
        yield* cache.get(`scan-${i}`)
        yield* cache.get("hot")
      }
      expect(lookup.loads.get("hot")).toBe(1)
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

  it.scoped("a load that was under way when invalidated answers its waiters but is not cached", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      yield* lookup.hold
      const waiter = yield* Effect.fork(cache.get("a"))
      yield* Effect.yieldNow()
      yield* cache.invalidate("a")
      yield* lookup.release
      const old = yield* Fiber.join(waiter)
      const fresh = yield* cache.get("a")
      expect(fresh).not.toBe(old)
      expect(lookup.loads.get("a")).toBe(2)
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

  it.scoped("getMany returns each id's manager or error in order", () =>
    Effect.gen(function* () {
      const { cache, lookup } = yield* setup()
      yield* cache.get("a")
      yield* lookup.fail(true)
      const results = yield* cache.getMany(["a", "b"])
      expect(Either.isRight(results[0]!)).toBe(true)
      expect(Either.isLeft(results[1]!)).toBe(true)
    }))

  it.scoped("reports its metrics under its cache label", () =>
    Effect.gen(function* () {
      const label = `test-${Math.random()}`
      const metrics = M.forCache(label)
      const { cache } = yield* setup({ capacity: 2 }, label)
      for (const id of ["a", "a", "b", "c", "a"]) yield* cache.get(id)
      yield* cache.invalidate("a")
      const read = (m: typeof metrics.hits) => Effect.map(Metric.value(m), (s) => s.count)
      expect(yield* read(metrics.hits)).toBe(2)
      expect(yield* read(metrics.misses)).toBe(3)
      expect(yield* read(metrics.loads)).toBe(3)
      expect(yield* read(metrics.evictions)).toBe(1)
      expect(yield* read(metrics.invalidations)).toBe(1)
      expect((yield* Metric.value(metrics.size)).value).toBe(1)
      expect((yield* Metric.value(metrics.loadDuration)).count).toBe(3)
      expect(Duration.toMillis(config().ttl)).toBe(60_000)
    }))
})
