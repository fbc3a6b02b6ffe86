/**
 * Faults from the caller's managers: entries that are not entries, names that cannot be strings,
 * resolvers that answer nonsense. A compile skips and counts what it cannot use, and never rejects
 * with an untyped error.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Metric } from "effect"
import { afterEach } from "vitest"
import { promiseBackend } from "../../src/layers/backends.js"
import { PersistenceAdapterLive } from "../../src/layers/PersistenceAdapterLive.js"
import * as M from "../../src/metrics.js"
import { makePantheonPersistenceAdapter, type PantheonPersistenceAdapter } from "../../src/promise/makePantheonPersistenceAdapter.js"
import { ContextCompiler } from "../../src/services/ContextCompiler.js"
import { entry } from "../support/doubles.js"

const managers = (recent: Array<unknown>, relevant: Array<unknown> = []) => [
  { name: "chat", getMostRecent: async () => recent, getMostRelevant: async () => relevant },
  { name: "notes", getMostRecent: async () => [entry("a good note", "2024-01-01T00:00:05Z", { displayName: "Ann" })], getMostRelevant: async () => [] }
]

const compileWith = (recent: Array<unknown>, request: object, relevant: Array<unknown> = []) =>
  Effect.flatMap(ContextCompiler, (c) => c.compile(request)).pipe(
    Effect.provide(PersistenceAdapterLive({ cache: {} }).pipe(Layer.provideMerge(promiseBackend(async () => managers(recent, relevant)))))
  )

describe("entries that are not entries", () => {
  it.scoped("null, undefined, strings, arrays and entries of the wrong types are skipped and counted; the compile goes on", () =>
    Effect.gen(function* () {
      const before = (yield* Metric.value(M.compileInvalidEntries)).count
      const junk = [null, undefined, "text", 42, [1, 2], { text: 5, timestamp: 1, metadata: {} }, { text: "no metadata", timestamp: 1, metadata: "x" }]
      const messages = yield* compileWith([...junk, entry("fine", "2024-01-01T00:00:01Z", { displayName: "Bob" })], {
        sources: [{ id: "chat" }, { id: "notes" }],
        texts: ["q"],
        onSourceError: "fail"
      }, [null, entry("relevant", "2024-01-01T00:00:02Z", { displayName: "Bob" })])
      expect(messages.map((m) => m.content)).toEqual([
        "Bob said (2024-01-01T00:00:01.000Z): fine",
        "Bob said (2024-01-01T00:00:02.000Z): relevant",
        "Ann said (2024-01-01T00:00:05.000Z): a good note"
      ])
      // 5 non-objects of the recent query, 2 entries of wrong types, the null of each relevance query.
      expect((yield* Metric.value(M.compileInvalidEntries)).count - before).toBe(9)
    }))

  it.scoped("a manager that answers something other than an array fails that source with a typed error", () =>
    Effect.gen(function* () {
      const failed = yield* Effect.flip(
        Effect.flatMap(ContextCompiler, (c) => c.compile({ sources: [{ id: "odd" }], onSourceError: "fail" })).pipe(
          Effect.provide(
            PersistenceAdapterLive({ cache: {} }).pipe(
              Layer.provideMerge(promiseBackend(async () => [{ name: "odd", getMostRecent: async () => ({ rows: [] }), getMostRelevant: async () => [] }]))
            )
          )
        )
      )
      expect(failed).toMatchObject({ _tag: "SourceFailed", sourceId: "odd", cause: { _tag: "StoreQueryError", operation: "getMostRecent" } })
    }))
})

describe("names and resolvers that cannot be strings", () => {
  const weird = [
    entry("null prototype", "2024-01-01T00:00:01Z", { displayName: Object.create(null) }),
    entry("throwing toString", "2024-01-01T00:00:02Z", { name: { toString: () => { throw new Error("no") } } }),
    entry("a symbol", "2024-01-01T00:00:03Z", { displayName: Symbol("s") })
  ]

  it.scoped("fall back safely (\"Unknown\", or String() where it works) instead of failing the compile", () =>
    Effect.gen(function* () {
      const messages = yield* compileWith(weird, { sources: [{ id: "chat" }] })
      expect(messages.map((m) => m.content)).toEqual([
        "Unknown said (2024-01-01T00:00:01.000Z): null prototype",
        "Unknown said (2024-01-01T00:00:02.000Z): throwing toString",
        "Symbol(s) said (2024-01-01T00:00:03.000Z): a symbol"
      ])
    }))
})

describe("the Promise facade", () => {
  const adapters: Array<PantheonPersistenceAdapter> = []
  afterEach(async () => {
    await Promise.all(adapters.splice(0).map((a) => a.dispose()))
  })
  const adapter = (deps: Parameters<typeof makePantheonPersistenceAdapter>[0]) => {
    const a = makePantheonPersistenceAdapter(deps)
    adapters.push(a)
    return a
  }

  it("answers null entries and odd resolvers with messages, not a TypeError, even under onSourceError: fail", async () => {
    const a = adapter({
      getStoreManagers: async () => managers([null, undefined, entry("ok", "2024-01-01T00:00:01Z", { displayName: "Kim" })]),
      formatTime: () => 12 as unknown as string,
      resolveName: () => ({ not: "a string" })
    })
    const messages = await a.compile({ sources: [{ id: "chat" }], onSourceError: "fail" })
    expect(messages).toEqual([{ role: "system", content: "Kim said (2024-01-01T00:00:01.000Z): ok" }])
  })

  it("rejects a filter key __proto__ naming the field, instead of dropping it", async () => {
    const a = adapter({ getStoreManagers: async () => managers([]) })
    const where = JSON.parse('{"__proto__": {"polluted": true}}')
    await expect(a.compile({ sources: [{ id: "chat", where }] })).rejects.toMatchObject({ _tag: "InvalidCompileRequest", field: "sources[0].where.__proto__" })
  })

  it("rejects calls after dispose with a tagged AdapterDisposed", async () => {
    const a = adapter({ getStoreManagers: async () => [] })
    await a.dispose()
    await expect(a.compile({ sources: [] })).rejects.toMatchObject({ _tag: "AdapterDisposed" })
    await expect(a.cacheStats()).rejects.toMatchObject({ _tag: "AdapterDisposed" })
  })

  it("dispose() rejects the compiles still running with AdapterDisposed (it used to be UnexpectedError \"Interrupted by fibers\")", async () => {
    let started!: () => void
    const running = new Promise<void>((r) => (started = r))
    const a = adapter({
      getStoreManagers: async () => [
        { name: "slow", getMostRecent: () => (started(), new Promise<Array<unknown>>(() => {})), getMostRelevant: async () => [] }
      ]
    })
    const compiles = Array.from({ length: 3 }, () => a.compile({ sources: [{ id: "slow" }] }))
    await running
    await a.dispose()
    for (const c of compiles) await expect(c).rejects.toMatchObject({ _tag: "AdapterDisposed" })
  })

  it("an entry that throws when read (a getter in its metadata, or on itself) is skipped and counted; the compile goes on", async () => {
    const before = (await Effect.runPromise(Metric.value(M.compileInvalidEntries))).count
    const throwingMeta = entry("meta getter", "2024-01-01T00:00:01Z", {})
    Object.defineProperty(throwingMeta.metadata, "displayName", { enumerable: true, get: () => { throw new Error("getter") } })
    const throwingText = { timestamp: 1, metadata: {}, get text(): string { throw new Error("text getter") } }
    const a = adapter({ getStoreManagers: async () => managers([throwingMeta, throwingText, entry("ok", "2024-01-01T00:00:02Z", { displayName: "Kim" })]) })
    const messages = await a.compile({ sources: [{ id: "chat" }], onSourceError: "fail" })
    expect(messages.map((m) => m.content)).toEqual(["Kim said (2024-01-01T00:00:02.000Z): ok"])
    expect((await Effect.runPromise(Metric.value(M.compileInvalidEntries))).count - before).toBe(2)
  })

  it("turns a crash in the caller's getStoreManagers into a typed rejection", async () => {
    const a = adapter({
      getStoreManagers: (() => {
        throw new TypeError("getStoreManagers crashed synchronously")
      }) as never
    })
    await expect(a.compile({ sources: [{ id: "chat" }] })).rejects.toMatchObject({ _tag: "CatalogUnavailable" })
  })
})
