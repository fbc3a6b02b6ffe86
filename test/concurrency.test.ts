/**
 * `allWithin`: a round of effects under one deadline (TestClock's, and a real one), the first failure,
 * and interruption of the caller, each stopping what is still running.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Option, Ref, TestClock } from "effect"
import { allWithin } from "../src/concurrency.js"

/** An effect that never finishes, and records when it is interrupted. */
const hanging = (interrupted: Ref.Ref<number>) => Effect.onInterrupt(Effect.never, () => Ref.update(interrupted, (n) => n + 1))

/** Lets forked fibers run (bounded; no clock involved). */
const settle = Effect.repeatN(Effect.yieldNow(), 20)

describe("allWithin", () => {
  it.effect("answers with every value, in order, when all finish in time (sync and async alike)", () =>
    Effect.gen(function* () {
      const values = yield* allWithin([Effect.succeed(1), Effect.promise(() => Promise.resolve(2)), Effect.as(Effect.sleep("1 second"), 3)], Duration.seconds(5)).pipe(
        Effect.fork,
        Effect.tap(() => Effect.zipRight(settle, TestClock.adjust("1 second"))),
        Effect.flatMap(Fiber.join)
      )
      expect(values).toEqual([Option.some(1), Option.some(2), Option.some(3)])
      expect(yield* allWithin([], Duration.seconds(1))).toEqual([])
    }))

  it.effect("at the deadline: None for what still runs (interrupted), the others' values kept", () =>
    Effect.gen(function* () {
      const interrupted = yield* Ref.make(0)
      const fiber = yield* Effect.fork(allWithin([Effect.succeed("fast"), hanging(interrupted)], Duration.seconds(2)))
      yield* settle
      yield* TestClock.adjust("1999 millis")
      yield* settle
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.join(fiber)).toEqual([Option.some("fast"), Option.none()])
      yield* settle
      expect(yield* Ref.get(interrupted)).toBe(1)
    }))

  it.effect("the first failure fails the round at once and interrupts the others", () =>
    Effect.gen(function* () {
      const interrupted = yield* Ref.make(0)
      const gate = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(allWithin([hanging(interrupted), Effect.zipRight(Deferred.await(gate), Effect.fail("boom")), hanging(interrupted)], Duration.seconds(5)))
      yield* settle
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Effect.flip(Fiber.join(fiber))).toBe("boom")
      yield* settle
      expect(yield* Ref.get(interrupted)).toBe(2)
    }))

  it.effect("interrupting the caller interrupts the round's fibers", () =>
    Effect.gen(function* () {
      const interrupted = yield* Ref.make(0)
      const fiber = yield* Effect.fork(allWithin([hanging(interrupted), hanging(interrupted)], Duration.seconds(5)))
      yield* settle
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
      yield* settle
      expect(yield* Ref.get(interrupted)).toBe(2)
    }))

  it.live("on the live clock, a real (short) deadline", () =>
    Effect.gen(function* () {
      const started = Date.now()
      const values = yield* allWithin([Effect.succeed(1), Effect.never], Duration.millis(30))
      expect(values).toEqual([Option.some(1), Option.none()])
      expect(Date.now() - started).toBeGreaterThanOrEqual(25)
    }))
})
