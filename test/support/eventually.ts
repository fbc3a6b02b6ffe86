/**
 * Waiting in tests on a condition, not on a count of yields: the other fibers run until the
 * condition holds, and a bound turns a regression into a failure instead of a hang. No clock is
 * involved, so it suits a TestClock and a busy machine alike.
 */
import { expect } from "@effect/vitest"
import { Effect, type Fiber, FiberStatus } from "effect"

/** Yields to the other fibers until `done` holds (at most `bound` times), then asserts it. */
export const eventually = <E, R>(done: Effect.Effect<boolean, E, R>, bound = 10_000): Effect.Effect<void, E, R> =>
  Effect.gen(function* () {
    for (let i = 0; i < bound && !(yield* done); i++) yield* Effect.yieldNow()
    expect(yield* done).toBe(true)
  })

/** The same for a plain condition. */
export const until = (done: () => boolean, bound?: number): Effect.Effect<void> => eventually(Effect.sync(done), bound)

/** Until each fiber is suspended (waiting on something it cannot do itself: a held lookup, a gate, a sleep) or done. */
export const parked = (...fibers: ReadonlyArray<Fiber.RuntimeFiber<unknown, unknown>>): Effect.Effect<void> =>
  eventually(
    Effect.map(
      Effect.forEach(fibers, (fiber) => fiber.status),
      (statuses) => statuses.every((s) => FiberStatus.isSuspended(s) || FiberStatus.isDone(s))
    )
  )
