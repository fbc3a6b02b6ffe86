/**
 * The permits of `lookupConcurrency`: at most n loads at once, waiters served in arrival order,
 * one waiter woken per release, and a waiter that is interrupted neither runs nor keeps a permit.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import * as LoadingCache from "../../src/cache/LoadingCache.js"
import { Permits } from "../../src/cache/Permits.js"

describe("Permits", () => {
  it.effect("runs at most n at once, in arrival order, and every caller finishes", () =>
    Effect.gen(function* () {
      const permits = new Permits(2)
      const gate = yield* Deferred.make<void>()
      let running = 0
      let most = 0
      const order: Array<number> = []
      const job = (i: number) =>
        permits.withPermit(
          Effect.gen(function* () {
            running++
            most = Math.max(most, running)
            order.push(i)
            yield* Deferred.await(gate)
            yield* Effect.yieldNow()
            running--
          })
        )
      const fibers = yield* Effect.forEach(Array.from({ length: 2000 }, (_, i) => i), (i) => Effect.fork(job(i)))
      yield* Effect.yieldNow()
      expect(order).toEqual([0, 1])
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.joinAll(fibers)
      expect(most).toBe(2)
      expect(order).toEqual(Array.from({ length: 2000 }, (_, i) => i))
    }))

  it.effect("a waiter interrupted before its turn never runs, and the permits still go round", () =>
    Effect.gen(function* () {
      const permits = new Permits(1)
      const gate = yield* Deferred.make<void>()
      const ran: Array<string> = []
      const holder = yield* Effect.fork(permits.withPermit(Effect.zipRight(Deferred.await(gate), Effect.sync(() => ran.push("holder")))))
      const waiter = yield* Effect.fork(permits.withPermit(Effect.sync(() => ran.push("waiter"))))
      const next = yield* Effect.fork(permits.withPermit(Effect.sync(() => ran.push("next"))))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(waiter)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(holder)
      yield* Fiber.join(next)
      expect(ran).toEqual(["holder", "next"])
      // All permits are back: one more runs at once.
      expect(yield* permits.withPermit(Effect.succeed("free"))).toBe("free")
    }))

  it.effect("a permit holder that fails or is interrupted gives its permit back", () =>
    Effect.gen(function* () {
      const permits = new Permits(1)
      expect((yield* Effect.either(permits.withPermit(Effect.fail("boom"))))._tag).toBe("Left")
      const stuck = yield* Effect.fork(permits.withPermit(Effect.never))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(stuck)
      expect(yield* permits.withPermit(Effect.succeed(1))).toBe(1)
    }))
})

describe("lookupConcurrency", () => {
  it.scoped("thousands of loads behind a few permits all load, never more than the bound at once", () =>
    Effect.gen(function* () {
      let running = 0
      let most = 0
      const cache = yield* LoadingCache.makeWith<string, string>({
        capacity: 64,
        lookupConcurrency: 8,
        lookup: (key) =>
          Effect.gen(function* () {
            running++
            most = Math.max(most, running)
            yield* Effect.yieldNow()
            running--
            return key.toUpperCase()
          }),
        timeToLive: () => "1 hour"
      })
      const keys = Array.from({ length: 4000 }, (_, i) => `k${i}`)
      const values = yield* cache.getMany(keys)
      expect(values.map((v) => v._tag === "Right" && v.right)).toEqual(keys.map((k) => k.toUpperCase()))
      expect(most).toBe(8)
    }))
})
