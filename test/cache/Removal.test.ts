/**
 * The removal listener: each value that leaves the cache is told once with its cause (Caffeine's
 * `RemovalCause`), after the request that removed it, and a failing listener harms nothing.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Logger, TestClock } from "effect"
import * as LoadingCache from "../../src/cache/LoadingCache.js"
import { until } from "../support/eventually.js"

interface Notice {
  readonly key: string
  readonly value: string
  readonly cause: LoadingCache.RemovalCause
}

const setup = (options: Partial<LoadingCache.LoadingCacheOptions<string, string, string>> = {}) =>
  Effect.gen(function* () {
    const notices: Array<Notice> = []
    let version = 0
    const cache = yield* LoadingCache.makeWith<string, string, string>({
      capacity: 100,
      lookup: (key) => Effect.sync(() => `${key}#${++version}`),
      timeToLive: () => "60 seconds",
      onRemoval: (key, value, cause) => Effect.sync(() => void notices.push({ key, value, cause })),
      ...options
    })
    return { cache, notices }
  })


describe("the removal listener", () => {
  it.scoped("evicted: a value the bound pushes out", () =>
    Effect.gen(function* () {
      const { cache, notices } = yield* setup({ capacity: 2 })
      for (const key of ["a", "b", "c"]) yield* cache.get(key)
      yield* until(() => notices.length === 1)
      expect(notices).toEqual([{ key: "a", value: "a#1", cause: "evicted" }])
    }))

  it.scoped("evicted: a value heavier than the bound, at once", () =>
    Effect.gen(function* () {
      const { cache, notices } = yield* setup({ capacity: Infinity, weigher: (_k, v) => v.length, maxWeight: 3 })
      yield* cache.get("long")
      yield* until(() => notices.length === 1)
      expect(notices).toEqual([{ key: "long", value: "long#1", cause: "evicted" }])
    }))

  it.scoped("expired: past its TTL, found on access or by the sweep", () =>
    Effect.gen(function* () {
      const { cache, notices } = yield* setup({ sweepInterval: "25 seconds" })
      yield* cache.get("a")
      yield* cache.get("b")
      yield* TestClock.adjust("60 seconds")
      yield* cache.get("a")
      yield* until(() => notices.length === 1)
      expect(notices).toEqual([{ key: "a", value: "a#1", cause: "expired" }])
      yield* TestClock.adjust("15 seconds")
      yield* until(() => notices.length === 2)
      expect(notices[1]).toEqual({ key: "b", value: "b#2", cause: "expired" })
    }))

  it.scoped("invalidated: by invalidate, invalidateWhen and invalidateAll; a load that ends after its entry was invalidated too", () =>
    Effect.gen(function* () {
      const gate = yield* Deferred.make<void>()
      const { cache, notices } = yield* setup()
      yield* cache.getMany(["a", "b", "c"])
      yield* cache.invalidate("a")
      yield* cache.invalidateWhen("b", (v) => v === "b#2")
      yield* cache.invalidateAll
      yield* until(() => notices.length === 3)
      expect(notices.map((n) => [n.key, n.cause])).toEqual([["a", "invalidated"], ["b", "invalidated"], ["c", "invalidated"]])
      let started = false
      const slow = yield* Effect.fork(cache.getWith("d", () => Effect.suspend(() => ((started = true), Effect.as(Deferred.await(gate), "d!")))))
      yield* until(() => started)
      yield* cache.invalidate("d")
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.join(slow)).toBe("d!")
      yield* until(() => notices.length === 4)
      expect(notices[3]).toEqual({ key: "d", value: "d!", cause: "invalidated" })
    }))

  it.scoped("replaced: by set, and by a reload with another value (not by one that returns the same value)", () =>
    Effect.gen(function* () {
      const same = "kept"
      const { cache, notices } = yield* setup({ reload: (key, previous) => Effect.succeed(key === "same" ? previous : `${previous}+`) })
      yield* cache.get("a")
      yield* cache.set("a", "given")
      yield* until(() => notices.length === 1)
      expect(notices).toEqual([{ key: "a", value: "a#1", cause: "replaced" }])
      yield* cache.refresh("a")
      yield* until(() => notices.length === 2)
      expect(notices[1]).toEqual({ key: "a", value: "given", cause: "replaced" })
      yield* cache.set("same", same)
      yield* cache.refresh("same")
      yield* cache.set("same", same)
      yield* cache.invalidate("same")
      yield* until(() => notices.length === 3)
      expect(notices[2]).toEqual({ key: "same", value: "kept", cause: "invalidated" })
    }))

  it.scoped("runs after the request that removed the value, not during it", () =>
    Effect.gen(function* () {
      const { cache, notices } = yield* setup({ capacity: 1 })
      yield* cache.get("a")
      yield* cache.get("b")
      expect(notices).toEqual([])
      yield* until(() => notices.length === 1)
    }))

  it.scoped("a listener that fails or throws is logged; the request and the next notices go on", () => {
    const logged: Array<string> = []
    return Effect.gen(function* () {
      const told: Array<string> = []
      const cache = yield* LoadingCache.makeWith<string, string>({
        capacity: 100,
        lookup: (key) => Effect.succeed(key),
        timeToLive: () => "1 minute",
        label: "failing-listener",
        onRemoval: (key) => {
          if (key === "throws") throw new Error("listener threw")
          return key === "fails" ? Effect.fail(new Error("listener failed")) : Effect.sync(() => void told.push(key))
        }
      })
      for (const key of ["throws", "fails", "fine"]) yield* cache.get(key)
      const exit = yield* Effect.exit(cache.invalidateAll)
      expect(Exit.isSuccess(exit)).toBe(true)
      yield* until(() => told.length === 1 && logged.length === 2)
      expect(told).toEqual(["fine"])
      expect(logged.join("\n")).toContain("listener threw")
      expect(logged.join("\n")).toContain("listener failed")
    }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void logged.push(String(message))))))
  })
})
