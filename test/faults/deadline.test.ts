/**
 * A manager query that never settles: the compile ends at `queryTimeout` with the source skipped (or
 * failed, per `onSourceError`), instead of hanging for ever.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Logger, Metric, TestClock } from "effect"
import { managersBackend } from "../../src/layers/backends.js"
import { health } from "../../src/layers/health.js"
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

/**
 * A source that never answers in time is reported, not silently reduced to its recent entries:
 * `pantheon_source_timeouts_total{source}` counts each late query, one warning names it at the
 * start of its streak (not one a compile), `/healthz`'s report lists it until it answers in time.
 */
describe("a source that keeps passing its deadline", () => {
  const slowLayer = (managers: ReadonlyArray<StoreManager>, logs: Array<string>) =>
    PersistenceAdapterLive({ cache: { queryTimeout: "2 seconds" } }).pipe(
      Layer.provideMerge(managersBackend(managers)),
      Layer.provideMerge(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void logs.push((Array.isArray(message) ? message : [message]).join(" ")))))
    )
  const timeouts = (id: string) => Effect.map(Metric.value(Metric.tagged(M.sourceTimeouts, "source", id)), (c) => c.count)

  /** One compile, driven past the deadline on the TestClock while anything of it is late. */
  const compileDriven = (request: unknown, calls: () => number) =>
    Effect.gen(function* () {
      const before = { calls: calls(), sleeps: (yield* TestClock.sleeps()).length }
      const fiber = yield* Effect.fork(Effect.flatMap(ContextCompiler, (c) => c.compile(request)))
      for (let round = 0; round < 2; round++) {
        const waiting = Effect.map(TestClock.sleeps(), (sleeps) => fiber.unsafePoll() !== null || (calls() > before.calls && sleeps.length > before.sleeps))
        for (let i = 0; i < 10_000 && !(yield* waiting); i++) yield* Effect.yieldNow()
        if (fiber.unsafePoll() !== null) break
        yield* TestClock.adjust("2 seconds")
        before.calls = calls()
      }
      return yield* Fiber.join(fiber)
    })

  it.scoped("counts every late query by source, warns once a streak, lists it in the health report, and clears it once it answers", () => {
    const logs: Array<string> = []
    const state = { hang: true, calls: 0 }
    const answer = [entry("finally", "2024-01-01T00:00:02Z", { displayName: "Bo" })]
    const flaky: StoreManager = {
      ...cannedManager("flaky"),
      getMostRecent: () => Effect.suspend(() => (state.calls++, state.hang ? Effect.never : Effect.succeed(answer)))
    }
    return Effect.gen(function* () {
      const before = yield* timeouts("flaky")
      const request = { sources: [{ id: "flaky" }, { id: "fine" }] }
      for (let i = 0; i < 3; i++) {
        const messages = yield* compileDriven(request, () => state.calls)
        expect(messages.map((m) => m.content)).toEqual(["Ann said (2024-01-01T00:00:01.000Z): still here"])
      }
      expect((yield* timeouts("flaky")) - before).toBe(3)
      expect((yield* Metric.value(M.slowSources)).value).toBe(1)
      const warnings = logs.filter((l) => l.includes("flaky"))
      expect(warnings).toEqual([
        "source flaky: getMostRecent did not answer within 2s (queryTimeout); compiles use only what it answered in time until it does (reported once per streak: /healthz and stats list it, metric pantheon_source_timeouts_total)"
      ])
      const report = yield* health
      expect(report.status).toBe("ok")
      expect(report.slowSources).toMatchObject([{ id: "flaky", operations: ["getMostRecent"], compiles: 3, timeouts: 3, queryTimeout: "2s" }])

      state.hang = false
      const messages = yield* compileDriven(request, () => state.calls)
      expect(messages.map((m) => m.content)).toContain("Bo said (2024-01-01T00:00:02.000Z): finally")
      expect((yield* health).slowSources).toEqual([])
      expect((yield* Metric.value(M.slowSources)).value).toBe(0)
      expect(logs.filter((l) => l.includes("flaky")).at(-1)).toBe("source flaky: answers within 2s (queryTimeout) again, after 3 compiles with 3 late queries")

      // A new streak warns again, once.
      state.hang = true
      yield* compileDriven(request, () => state.calls)
      yield* compileDriven(request, () => state.calls)
      expect(logs.filter((l) => l.includes("did not answer"))).toHaveLength(2)
    }).pipe(Effect.provide(slowLayer([flaky, fine], logs)))
  })

  it.scoped("a source whose relevance query is late still gives its recent entries, and is reported for it", () => {
    const logs: Array<string> = []
    const calls = { n: 0 }
    const half: StoreManager = {
      ...cannedManager("half", { recent: [entry("recent one", "2024-01-01T00:00:03Z", { displayName: "Cy" })] }),
      getMostRelevant: () => Effect.suspend(() => (calls.n++, Effect.never))
    }
    return Effect.gen(function* () {
      const before = yield* timeouts("half")
      const messages = yield* compileDriven({ sources: [{ id: "half" }], texts: ["what happened?"] }, () => calls.n)
      expect(messages.map((m) => m.content)).toEqual(["Cy said (2024-01-01T00:00:03.000Z): recent one"])
      // The relevance query and the image query, both late.
      expect((yield* timeouts("half")) - before).toBe(2)
      expect((yield* health).slowSources).toMatchObject([{ id: "half", operations: ["getMostRelevant"], compiles: 1, timeouts: 2 }])
      expect(logs.filter((l) => l.includes("skipping source half"))).toEqual([])
      expect(logs.filter((l) => l.includes("source half: getMostRelevant did not answer within 2s"))).toHaveLength(1)
    }).pipe(Effect.provide(slowLayer([half], logs)))
  })
})
