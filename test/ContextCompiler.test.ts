import { describe, expect, it } from "@effect/vitest"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { Effect, Either, Fiber, Layer, Metric, Queue, Stream, TestClock } from "effect"
import type { CacheConfigInput } from "../src/domain/config.js"
import { StoreQueryError, StoreUnavailable } from "../src/domain/errors.js"
import type { StoreDescriptor } from "../src/domain/schemas.js"
import { managersBackend, promiseBackend } from "../src/layers/backends.js"
import { PersistenceAdapterLive } from "../src/layers/PersistenceAdapterLive.js"
import * as M from "../src/metrics.js"
import { ContextCompiler } from "../src/services/ContextCompiler.js"
import { ManagerCache } from "../src/services/ManagerCache.js"
import { StoreBackend } from "../src/services/StoreBackend.js"
import { StoreEvents } from "../src/services/StoreEvents.js"
import type { StoreManager } from "../src/services/StoreManager.js"
import { StoreManagerRegistry } from "../src/services/StoreManagerRegistry.js"
import { cannedManager, entry } from "./support/doubles.js"
import { parked } from "./support/eventually.js"

setFlagsFromString("--expose-gc")

const cache: CacheConfigInput = { ttl: "60 seconds", failureTtl: "1 second", refreshAhead: 1 }

const withManagers = (managers: ReadonlyArray<StoreManager>, config: CacheConfigInput = cache) =>
  Effect.provide(PersistenceAdapterLive({ cache: config }).pipe(Layer.provide(managersBackend(managers))))

/** The caller's Promise managers, counting getStoreManagers calls. */
const legacy = (managers: () => ReadonlyArray<unknown> | Promise<ReadonlyArray<unknown>>) => {
  const calls = { count: 0 }
  const layer = promiseBackend(async () => {
    calls.count++
    return managers()
  })
  return { calls, provide: (config: CacheConfigInput = cache) => Effect.provide(PersistenceAdapterLive({ cache: config }).pipe(Layer.provide(layer))) }
}

const promiseManager = (name: string, recent: Array<unknown> = [], relevant: Array<unknown> = []) => {
  const seen: Array<{ op: string; args: Array<unknown> }> = []
  return {
    seen,
    name,
    getMostRecent: async (...args: Array<unknown>) => (seen.push({ op: "recent", args }), recent),
    getMostRelevant: async (...args: Array<unknown>) => (seen.push({ op: "relevant", args }), relevant)
  }
}

const compile = (request: unknown) => Effect.flatMap(ContextCompiler, (c) => c.compile(request))

describe("ContextCompiler", () => {
  it.scoped("compiles the reference example", () =>
    Effect.gen(function* () {
      const messages = yield* compile({ sources: [{ id: "chat" }] })
      expect(messages).toEqual([
        { role: "system", content: "Ann said (2024-01-01T00:00:01.000Z): first" },
        { role: "user", content: "Bob said (2024-01-01T00:00:02.000Z): second" }
      ])
    }).pipe(
      withManagers([
        cannedManager("chat", {
          recent: [entry("second", "2024-01-01T00:00:02Z", { displayName: "Bob", role: "user" }), entry("first", "2024-01-01T00:00:01Z", { displayName: "Ann" })]
        })
      ])
    ))

  it.scoped("returns [] for no sources without reading the catalog", () => {
    const l = legacy(() => [promiseManager("chat")])
    return Effect.gen(function* () {
      expect(yield* compile({ sources: [] })).toEqual([])
      expect(yield* compile({})).toEqual([])
      expect(l.calls.count).toBe(0)
    }).pipe(l.provide())
  })

  it.scoped("returns [] with no store I/O when no source matches", () => {
    const chat = promiseManager("chat", [entry("x", "2024-01-01T00:00:00Z")])
    const l = legacy(() => [chat])
    return Effect.gen(function* () {
      expect(yield* compile({ sources: [{ id: "nope" }] })).toEqual([])
      expect(chat.seen).toEqual([])
    }).pipe(l.provide())
  })

  it.scoped("queries matched managers in catalog order, each once, and seeds with the caller's text first", () => {
    const a = cannedManager("a", { recent: [entry("from a", "2024-01-01T00:00:01Z")] })
    const b = cannedManager("b", { recent: [entry("from b", "2024-01-01T00:00:02Z")] })
    return Effect.gen(function* () {
      yield* compile({ sources: [{ id: "b" }, { id: "a" }, { id: "b" }], texts: ["question"] })
      expect(a.calls.recent).toBe(1)
      expect(b.calls.recent).toBe(1)
      expect(a.calls.relevant[0]!.queries).toEqual(["question", "from a", "from b"])
      expect(a.calls.relevant.map((c) => c.limit)).toEqual([20, 20])
    }).pipe(withManagers([a, b]))
  })

  it.scoped("honours where on recent and relevance queries, even for stores that ignore it", () => {
    const m = promiseManager(
      "chat",
      [entry("mine", "2024-01-01T00:00:01Z", { user: "u1" }), entry("theirs", "2024-01-01T00:00:02Z", { user: "u2" })],
      [entry("mine img", "2024-01-01T00:00:03Z", { user: "u1", type: "image" }), entry("their img", "2024-01-01T00:00:04Z", { user: "u2", type: "image" })]
    )
    const l = legacy(() => [m])
    return Effect.gen(function* () {
      const messages = yield* compile({ sources: [{ id: "chat", where: { user: "u1" } }], texts: ["q"] })
      expect(messages.map((x) => x.content)).toEqual([expect.stringContaining("mine"), "Unknown shared an image"])
      expect(m.seen.map((s) => s.args.at(-1))).toEqual([{ user: "u1" }, { user: "u1" }, { user: "u1", type: "image" }])
    }).pipe(l.provide())
  })

  it.live("runs the recent queries of all managers, and each manager's two relevance queries, concurrently", () => {
    // Each query waits until all the queries of its round have started: run one at a time, they would never finish.
    const rendezvous = (expected: number) => {
      let started = 0
      let open: () => void = () => {}
      const gate = new Promise<void>((resolve) => (open = resolve))
      return Effect.promise(() => {
        if (++started === expected) open()
        return gate
      })
    }
    const recentRound = rendezvous(3)
    const relevantRound = rendezvous(6)
    const manager = (name: string): StoreManager => ({
      ...cannedManager(name),
      getMostRecent: () => Effect.as(recentRound, [entry(`${name} recent`, "2024-01-01T00:00:01Z")]),
      getMostRelevant: () => Effect.as(relevantRound, [])
    })
    return Effect.gen(function* () {
      const messages = yield* compile({ sources: [{ id: "a" }, { id: "b" }, { id: "c" }], texts: ["q"] }).pipe(Effect.timeout("5 seconds"))
      expect(messages).toHaveLength(3)
    }).pipe(withManagers([manager("a"), manager("b"), manager("c")]))
  })

  it.scoped("keeps image entries whose type is any case of \"image\" when the source has a filter", () => {
    const m = promiseManager("chat", [], [entry("https://img/a.png", "2024-01-01T00:00:03Z", { user: "u1", type: "Image", caption: "a diagram" })])
    const l = legacy(() => [m])
    return Effect.gen(function* () {
      const messages = yield* compile({ sources: [{ id: "chat", where: { user: "u1" } }], texts: ["diagram"] })
      expect(messages).toEqual([{ role: "system", content: "a diagram", images: ["https://img/a.png"] }])
    }).pipe(l.provide())
  })

  it.scoped("queries every manager whose name matches a source, each once, in catalog order", () => {
    const first = promiseManager("chat", [entry("from the first", "2024-01-01T00:00:01Z")])
    const other = promiseManager("notes", [entry("from notes", "2024-01-01T00:00:02Z")])
    const second = promiseManager("chat", [entry("from the second", "2024-01-01T00:00:03Z")])
    const l = legacy(() => [first, other, second])
    return Effect.gen(function* () {
      const messages = yield* compile({ sources: [{ id: "chat" }] })
      expect(messages.map((m) => m.content.split(": ")[1])).toEqual(["from the first", "from the second"])
      expect(first.seen.filter((s) => s.op === "recent")).toHaveLength(1)
      expect(second.seen.filter((s) => s.op === "recent")).toHaveLength(1)
      expect(other.seen).toEqual([])
    }).pipe(l.provide())
  })

  it.scoped("skips a failing source, counts it, and keeps the others", () => {
    const good = cannedManager("good", { recent: [entry("ok", "2024-01-01T00:00:01Z")] })
    const bad: StoreManager = { ...cannedManager("bad"), getMostRecent: () => Effect.fail(new StoreQueryError({ id: "bad", operation: "getMostRecent", reason: "down" })) }
    return Effect.gen(function* () {
      const before = (yield* Metric.value(M.compileSkippedSources)).count
      const messages = yield* compile({ sources: [{ id: "good" }, { id: "bad" }] })
      expect(messages.map((m) => m.content)).toEqual([expect.stringContaining("ok")])
      expect((yield* Metric.value(M.compileSkippedSources)).count - before).toBe(1)
      const failed = yield* Effect.either(compile({ sources: [{ id: "good" }, { id: "bad" }], onSourceError: "fail" }))
      expect(Either.isLeft(failed) && failed.left).toMatchObject({ _tag: "SourceFailed", sourceId: "bad" })
    }).pipe(withManagers([good, bad]))
  })

  it.scoped("skips entries with bad timestamps instead of failing the compile", () =>
    Effect.gen(function* () {
      const before = (yield* Metric.value(M.compileInvalidEntries)).count
      const messages = yield* compile({ sources: [{ id: "chat" }] })
      expect(messages).toHaveLength(1)
      expect((yield* Metric.value(M.compileInvalidEntries)).count - before).toBe(1)
    }).pipe(
      withManagers([cannedManager("chat", { recent: [entry("ok", "2024-01-01T00:00:01Z"), { text: "bad", timestamp: "yesterday-ish", metadata: {} }] })])
    ))

  it.scoped("fails with InvalidCompileRequest on a malformed request", () =>
    Effect.gen(function* () {
      const result = yield* Effect.either(compile({ sources: [{ id: "chat", where: 5 }] }))
      expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "InvalidCompileRequest", field: "sources[0].where" })
    }).pipe(withManagers([])))

  it.scoped("1,000 concurrent cold compiles: one catalog read and one load per source", () => {
    const managers = Array.from({ length: 16 }, (_, i) => promiseManager(`s${i}`, [entry(`t${i}`, "2024-01-01T00:00:01Z")]))
    const l = legacy(() => managers)
    return Effect.gen(function* () {
      const requests = Array.from({ length: 1000 }, (_, i) => ({ sources: [{ id: `s${i % 16}` }, { id: `s${(i * 7) % 16}` }] }))
      yield* Effect.forEach(requests, compile, { concurrency: "unbounded" })
      expect(l.calls.count).toBe(1)
      const stats = yield* Effect.flatMap(ManagerCache, (c) => c.stats)
      expect(stats.loads).toBe(16)
    }).pipe(l.provide())
  })

  it.scoped("calls getStoreManagers at most once per ttl, whatever the mix of sources", () => {
    const l = legacy(() => Array.from({ length: 16 }, (_, i) => promiseManager(`s${i}`)))
    return Effect.gen(function* () {
      for (let i = 0; i < 200; i++) yield* compile({ sources: [{ id: `s${i % 16}` }, { id: `s${(i * 5) % 16}` }] })
      expect(l.calls.count).toBe(1)
      yield* TestClock.adjust("59 seconds")
      yield* compile({ sources: [{ id: "s1" }] })
      expect(l.calls.count).toBe(1)
      yield* TestClock.adjust("1001 millis") // Effect's Cache expires strictly after ttl
      yield* compile({ sources: [{ id: "s1" }] })
      expect(l.calls.count).toBe(2)
    }).pipe(l.provide())
  })

  it.scoped("retries a failed or malformed getStoreManagers after failureTtl, caching nothing from it", () => {
    let result: unknown = { not: "an array" }
    const l = legacy(() => result as Array<unknown>)
    return Effect.gen(function* () {
      const first = yield* Effect.either(compile({ sources: [{ id: "chat" }] }))
      expect(Either.isLeft(first) && first.left.message).toContain("expected an array of store managers")
      result = [promiseManager("chat", [entry("hello", "2024-01-01T00:00:01Z")])]
      yield* Effect.either(compile({ sources: [{ id: "chat" }] }))
      expect(l.calls.count).toBe(1)
      yield* TestClock.adjust("1001 millis")
      const messages = yield* compile({ sources: [{ id: "chat" }] })
      expect(messages).toHaveLength(1)
      expect(l.calls.count).toBe(2)
    }).pipe(l.provide())
  })

  it.scoped("skips objects that lack the two query methods", () => {
    const l = legacy(() => [{ name: "broken", getMostRecent: async () => [] }, promiseManager("ok", [entry("x", "2024-01-01T00:00:01Z")]), null, 7])
    return Effect.gen(function* () {
      const descriptors = yield* Effect.flatMap(StoreManagerRegistry, (r) => Effect.map(r.catalog, (c) => c.descriptors))
      expect(descriptors.map((d) => d.id)).toEqual(["ok"])
      expect(yield* compile({ sources: [{ id: "broken" }, { id: "ok" }] })).toHaveLength(1)
    }).pipe(l.provide())
  })
})

/** A backend whose catalog the test edits, counting opens and the largest number running at once. */
const mutableBackend = (initial: Array<StoreDescriptor>) => {
  const state = { descriptors: initial, opens: 0, running: 0, maxRunning: 0, fail: new Set<string>() }
  const backend = Layer.succeed(StoreBackend, {
    catalog: Effect.sync(() => state.descriptors),
    open: (d) =>
      Effect.gen(function* () {
        state.opens++
        state.running++
        state.maxRunning = Math.max(state.maxRunning, state.running)
        yield* Effect.sleep("10 millis")
        state.running--
        if (state.fail.has(d.id)) return yield* new StoreUnavailable({ id: d.id, reason: "down" })
        return cannedManager(d.id, { version: state.opens })
      })
  })
  const layer = Layer.merge(backend, StoreEvents.layerLocal)
  return { state, provide: (config: CacheConfigInput = cache) => Effect.provide(PersistenceAdapterLive({ cache: config }).pipe(Layer.provideMerge(layer))) }
}

describe("StoreManagerRegistry", () => {
  it.scoped("load fails with StoreNotFound for an id the catalog lacks", () =>
    Effect.gen(function* () {
      const registry = yield* StoreManagerRegistry
      const result = yield* Effect.either(registry.load("ghost"))
      expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "StoreNotFound", id: "ghost" })
    }).pipe(mutableBackend([{ id: "a" }]).provide()))

  it.scoped("the manager cache opens in parallel, at most loadConcurrency at a time", () => {
    const b = mutableBackend(Array.from({ length: 12 }, (_, i) => ({ id: `s${i}` })))
    return Effect.gen(function* () {
      const managers = yield* ManagerCache
      yield* (yield* StoreManagerRegistry).catalog
      const fiber = yield* Effect.fork(managers.getMany(Array.from({ length: 12 }, (_, i) => `s${i}`)))
      yield* TestClock.adjust("10 millis")
      yield* TestClock.adjust("10 millis")
      const loaded = yield* Fiber.join(fiber)
      expect(loaded.filter(Either.isRight)).toHaveLength(12)
      expect(b.state.maxRunning).toBe(8)
    }).pipe(b.provide({ ...cache, loadConcurrency: 8 }))
  })

  it.scoped("fails a load that takes longer than loadTimeout with StoreUnavailable", () => {
    const b = mutableBackend([{ id: "slow" }])
    return Effect.gen(function* () {
      const registry = yield* StoreManagerRegistry
      const fiber = yield* Effect.fork(Effect.either(registry.load("slow")))
      yield* TestClock.adjust("5 millis")
      const result = yield* Fiber.join(fiber)
      expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "StoreUnavailable", id: "slow" })
    }).pipe(b.provide({ ...cache, loadTimeout: "5 millis" }))
  })

  it.scoped("reports added, removed and changed sources on changes, and the cache drops changed ones", () => {
    const b = mutableBackend([{ id: "a", fingerprint: "1" }, { id: "b" }])
    return Effect.gen(function* () {
      const registry = yield* StoreManagerRegistry
      const managers = yield* ManagerCache
      const changes = yield* Queue.unbounded<unknown>()
      yield* Effect.forkScoped(Stream.runForEach(yield* (yield* StoreEvents).stream, (c) => Queue.offer(changes, c)))
      const load = (id: string) => Effect.fork(managers.get(id)).pipe(Effect.tap(() => TestClock.adjust("10 millis")), Effect.flatMap(Fiber.join))
      const a1 = yield* load("a")
      yield* load("b")
      b.state.descriptors = [{ id: "a", fingerprint: "2" }, { id: "c" }]
      yield* TestClock.adjust("60 seconds")
      yield* registry.catalog
      const seen = [...(yield* Queue.takeBetween(changes, 3, 3))] as Array<{ _tag: string; id: string }>
      expect(seen.map((c) => `${c._tag}:${c.id}`)).toEqual(["SourceChanged:a", "SourceAdded:c", "SourceRemoved:b"])
      const keys = yield* managers.keys
      expect(keys).not.toContain("a")
      expect(keys).not.toContain("b")
      const a2 = yield* load("a")
      expect(a2).not.toBe(a1)
    }).pipe(b.provide({ ...cache, staleIfError: "10 minutes" }))
  })

  it.scoped("publishes each change it finds as an event", () => {
    const b = mutableBackend([{ id: "a", fingerprint: "1" }, { id: "b" }])
    return Effect.gen(function* () {
      const registry = yield* StoreManagerRegistry
      const collected = yield* Effect.fork(Stream.runCollect(Stream.take(yield* (yield* StoreEvents).stream, 3)))
      yield* registry.catalog
      b.state.descriptors = [{ id: "a", fingerprint: "2" }, { id: "c" }]
      yield* registry.invalidateCatalog
      yield* registry.catalog
      const changes = [...(yield* Fiber.join(collected))]
      expect(changes.map((c) => [c._tag, "id" in c ? c.id : null])).toEqual([["SourceChanged", "a"], ["SourceAdded", "c"], ["SourceRemoved", "b"]])
    }).pipe(b.provide())
  })

  it.scoped("an interrupted catalog reader does not fail the others", () => {
    let release: () => void = () => {}
    const gate = new Promise<void>((r) => (release = r))
    const l = legacy(async () => {
      await gate
      return [promiseManager("a")]
    })
    return Effect.gen(function* () {
      const registry = yield* StoreManagerRegistry
      const first = yield* Effect.fork(registry.catalog)
      yield* parked(first)
      const second = yield* Effect.fork(registry.catalog)
      yield* parked(second)
      yield* Fiber.interrupt(first)
      release()
      const catalog = yield* Fiber.join(second)
      expect(catalog.descriptors.map((d) => d.id)).toEqual(["a"])
      expect(l.calls.count).toBe(1)
    }).pipe(l.provide())
  })
})

describe("the catalog's memory", () => {
  // Live clock: TestClock keeps every timer (here each read's loadTimeout) until time passes it.
  it.live("stays flat over 10,000 reloads (Effect's Cache grows by one access-list node a reload)", () => {
    const gc = runInNewContext("gc") as () => void
    const heap = () => {
      gc()
      gc()
      return process.memoryUsage().heapUsed
    }
    return Effect.gen(function* () {
      const registry = yield* StoreManagerRegistry
      const cycle = Effect.zipRight(registry.invalidateCatalog, registry.catalog)
      for (let i = 0; i < 10_000; i++) yield* cycle // warm-up: JIT and first allocations
      const before = heap()
      for (let i = 0; i < 10_000; i++) yield* cycle
      // Effect's Cache held about 850 KB more after 10,000 reloads; what stays here is GC noise.
      expect(heap() - before).toBeLessThan(400_000)
    }).pipe(withManagers([cannedManager("a")]), Effect.scoped)
  })
})
