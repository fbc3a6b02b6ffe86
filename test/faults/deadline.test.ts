/**
 * A manager query that never settles: the compile ends at `queryTimeout` with the source skipped (or
 * failed, per `onSourceError`), instead of hanging for ever.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Metric, TestClock } from "effect"
import { managersBackend } from "../../src/layers/backends.js"
import { PersistenceAdapterLive } from "../../src/layers/PersistenceAdapterLive.js"
import * as M from "../../src/metrics.js"
import { makePantheonPersistenceAdapter } from "../../src/promise/makePantheonPersistenceAdapter.js"
import { eventually } from "../support/eventually.js"
import { ContextCompiler } from "../../src/services/ContextCompiler.js"
import type { StoreManager } from "../../src/services/StoreManager.js"
import { cannedManager, entry } from "../support/doubles.js"

const stuckCalls = { count: 0 }
const never = Effect.suspend(() => {
  stuckCalls.count++
  return Effect.never
})
const stuck: StoreManager = { ...cannedManager("stuck"), getMostRecent: () => never, getMostRelevant: () => never }
const fine = cannedManager("fine", { recent: [entry("still here", "2024-01-01T00:00:01Z", { displayName: "Ann" })] })

/** Where things stand before a compile is forked: the stuck query's calls and the sleeps pending on the TestClock. */
const mark = Effect.map(TestClock.sleeps(), (sleeps) => ({ calls: stuckCalls.count, sleeps: sleeps.length }))

/**
 * Lets the forked compile run until the stuck query has started and its deadline is set (one more
 * sleep pending on the TestClock): a condition, not a count of yields. Bounded, so a regression fails.
 */
const untilWaiting = (before: { readonly calls: number; readonly sleeps: number }) =>
  eventually(Effect.map(TestClock.sleeps(), (sleeps) => stuckCalls.count > before.calls && sleeps.length > before.sleeps))

const provide = Effect.provide(PersistenceAdapterLive({ cache: { queryTimeout: "2 seconds" } }).pipe(Layer.provideMerge(managersBackend([stuck, fine]))))

describe("a query that never settles", () => {
  it.scoped("is skipped after queryTimeout, and the other sources still answer", () =>
    Effect.gen(function* () {
      const skipped = (yield* Metric.value(M.compileSkippedSources)).count
      const before = yield* mark
      const fiber = yield* Effect.fork(Effect.flatMap(ContextCompiler, (c) => c.compile({ sources: [{ id: "stuck" }, { id: "fine" }] })))
      yield* untilWaiting(before)
      expect(stuckCalls.count).toBe(before.calls + 1)
      yield* TestClock.adjust("1999 millis")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      const messages = yield* Fiber.join(fiber)
      expect(messages.map((m) => m.content)).toEqual(["Ann said (2024-01-01T00:00:01.000Z): still here"])
      expect((yield* Metric.value(M.compileSkippedSources)).count - skipped).toBe(1)
    }).pipe(provide))

  it.scoped("fails the compile with a StoreQueryError naming the source under onSourceError: fail", () =>
    Effect.gen(function* () {
      const before = yield* mark
      const fiber = yield* Effect.fork(Effect.flip(Effect.flatMap(ContextCompiler, (c) => c.compile({ sources: [{ id: "stuck" }], onSourceError: "fail" }))))
      yield* untilWaiting(before)
      yield* TestClock.adjust("2 seconds")
      const error = yield* Fiber.join(fiber)
      expect(error).toMatchObject({ _tag: "SourceFailed", sourceId: "stuck", cause: { _tag: "StoreQueryError", id: "stuck", operation: "getMostRecent" } })
      expect(error.message).toContain("took longer than 2s (queryTimeout)")
    }).pipe(provide))

  it("ends a Promise compile whose manager never resolves, with a real (short) deadline", async () => {
    const adapter = makePantheonPersistenceAdapter(
      { getStoreManagers: async () => [{ name: "hung", getMostRecent: () => new Promise(() => {}), getMostRelevant: () => new Promise(() => {}) }] },
      { queryTimeout: 50 }
    )
    try {
      await expect(adapter.compile({ sources: [{ id: "hung" }] })).resolves.toEqual([])
      await expect(adapter.compile({ sources: [{ id: "hung" }], onSourceError: "fail" })).rejects.toMatchObject({ _tag: "SourceFailed", sourceId: "hung" })
    } finally {
      await adapter.dispose()
    }
  })
})
