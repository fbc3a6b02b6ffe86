/**
 * `allWithin`: a round of effects under one deadline (TestClock's, and a real one), the first failure,
 * and interruption of the caller, each stopping what is still running; `inTurnOfItsOwn`: one piece of
 * long work a turn of the event loop.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Option, TestClock } from "effect"
import { allWithin, inTurnOfItsOwn } from "../src/concurrency.js"
import { eventually, until } from "./support/eventually.js"

/** Effects that never finish, counting those that started and those interrupted. */
const hangers = () => {
  const count = { started: 0, interrupted: 0 }
  const hanging = Effect.suspend(() => {
    count.started++
    return Effect.onInterrupt(Effect.never, () => Effect.sync(() => void count.interrupted++))
  })
  return { count, hanging }
}

/** Until `n` sleeps are pending on the TestClock (the round's deadline and what the effects sleep). */
const sleeping = (n: number) => eventually(Effect.map(TestClock.sleeps(), (sleeps) => sleeps.length >= n))

describe("allWithin", () => {
  it.effect("answers with every value, in order, when all finish in time (sync and async alike)", () =>
    Effect.gen(function* () {
      const values = yield* allWithin([Effect.succeed(1), Effect.promise(() => Promise.resolve(2)), Effect.as(Effect.sleep("1 second"), 3)], Duration.seconds(5)).pipe(
        Effect.fork,
        // The 1-second sleep and the 5-second deadline.
        Effect.tap(() => Effect.zipRight(sleeping(2), TestClock.adjust("1 second"))),
        Effect.flatMap(Fiber.join)
      )
      expect(values).toEqual([Option.some(1), Option.some(2), Option.some(3)])
      expect(yield* allWithin([], Duration.seconds(1))).toEqual([])
    }))

  it.effect("at the deadline: None for what still runs (interrupted), the others' values kept", () =>
    Effect.gen(function* () {
      const { count, hanging } = hangers()
      const fiber = yield* Effect.fork(allWithin([Effect.succeed("fast"), hanging], Duration.seconds(2)))
      yield* until(() => count.started === 1)
      yield* sleeping(1)
      yield* TestClock.adjust("1999 millis")
      yield* sleeping(1) // the deadline still pending
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.join(fiber)).toEqual([Option.some("fast"), Option.none()])
      yield* until(() => count.interrupted === 1)
    }))

  it.effect("the first failure fails the round at once and interrupts the others", () =>
    Effect.gen(function* () {
      const { count, hanging } = hangers()
      const gate = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(allWithin([hanging, Effect.zipRight(Deferred.await(gate), Effect.fail("boom")), hanging], Duration.seconds(5)))
      yield* until(() => count.started === 2)
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Effect.flip(Fiber.join(fiber))).toBe("boom")
      yield* until(() => count.interrupted === 2)
    }))

  it.effect("interrupting the caller interrupts the round's fibers", () =>
    Effect.gen(function* () {
      const { count, hanging } = hangers()
      const fiber = yield* Effect.fork(allWithin([hanging, hanging], Duration.seconds(5)))
      yield* until(() => count.started === 2)
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
      yield* until(() => count.interrupted === 2)
    }))

  it.live("on the live clock, a real (short) deadline", () =>
    Effect.gen(function* () {
      const started = Date.now()
      const values = yield* allWithin([Effect.succeed(1), Effect.never], Duration.millis(30))
      expect(values).toEqual([Option.some(1), Option.none()])
      expect(Date.now() - started).toBeGreaterThanOrEqual(25)
    }))
})

describe("inTurnOfItsOwn", () => {
  it.live("runs each piece of work in an iteration of the event loop of its own, in order; a value, a throw and an interrupt each as they should", () =>
    Effect.gen(function* () {
      // A ticker that moves on once an iteration (an immediate set from an immediate runs in the next one).
      const loop = { iteration: 0, running: true }
      const tick = () => {
        loop.iteration++
        if (loop.running) setImmediate(tick)
      }
      setImmediate(tick)
      const ran: Array<[string, number]> = []
      const work = (name: string) => inTurnOfItsOwn(() => (ran.push([name, loop.iteration]), name))
      const skipped = yield* Effect.fork(inTurnOfItsOwn(() => ran.push(["interrupted", loop.iteration])))
      yield* Fiber.interrupt(skipped)
      const values = yield* Effect.all([work("a"), work("b"), work("c"), work("d")], { concurrency: "unbounded" })
      const thrown = yield* Effect.exit(inTurnOfItsOwn(() => {
        throw new Error("boom")
      }))
      loop.running = false
      expect(values).toEqual(["a", "b", "c", "d"])
      expect(ran.map(([name]) => name)).toEqual(["a", "b", "c", "d"])
      expect(new Set(ran.map(([, iteration]) => iteration)).size).toBe(4)
      expect(Exit.isFailure(thrown) && Exit.causeOption(thrown).pipe(Option.map((c) => String(c)), Option.getOrElse(() => ""))).toMatch(/boom/)
    }))
})
