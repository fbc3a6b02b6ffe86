/**
 * The PostgreSQL server backend, against the real server (this machine's has no pgvector, so this
 * is the `real[]` path; PGlite's tests cover pgvector). Fails in CI when the server is unreachable.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, ManagedRuntime, Scope, Stream } from "effect"
import { EmbeddedStoreLive } from "../src/layers/EmbeddedStoreLive.js"
import { PersistenceAdapterLive } from "../src/layers/PersistenceAdapterLive.js"
import { PostgresStoreLive } from "../src/layers/PostgresStoreLive.js"
import { ContextCompiler } from "../src/services/ContextCompiler.js"
import { Invalidated } from "../src/domain/events.js"
import { Embedder } from "../src/embedding/Embedder.js"
import { ManagerCache } from "../src/services/ManagerCache.js"
import { StoreEvents } from "../src/services/StoreEvents.js"
import { StoreManagerRegistry } from "../src/services/StoreManagerRegistry.js"
import { SqlStore } from "../src/stores/sql/SqlStore.js"
import { corpus } from "./support/corpus.js"
import { connectionsOf, makeProxy, query, schemaForFile } from "./support/postgres.js"

const db = await schemaForFile("pg")
const up = db.up

const channel = `pantheon_test_${Math.random().toString(36).slice(2, 8)}`
const instance = (options: { url?: string; maxConnections?: number; applicationName?: string; cache?: object } = {}) =>
  PersistenceAdapterLive({ cache: { ttl: "10 minutes", loadTimeout: "2 seconds", failureTtl: 0, ...options.cache } }).pipe(
    Layer.provideMerge(
      PostgresStoreLive({
        url: options.url ?? db.url,
        channel,
        maxConnections: options.maxConnections ?? 5,
        applicationName: options.applicationName ?? "pantheon-test",
        connectTimeout: "2 seconds",
        embedder: Embedder.layerFeatureHashing({ dimensions: 256 })
      })
    )
  )

const until = async (check: () => Promise<boolean>, ms = 5000) => {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check()) return true
    await new Promise((r) => setTimeout(r, 10))
  }
  return false
}

describe.skipIf(!up)("PostgresStoreLive", () => {
  it.live("uses real[] vectors without pgvector and ranks like PGlite's pgvector", () =>
    Effect.gen(function* () {
      /** The same corpus and queries on a store of the given vector mode. */
      const answers = (mode: string) =>
        Effect.gen(function* () {
          const store = yield* SqlStore
          expect(store.vectorMode).toBe(mode)
          yield* store.registerSource("ranked")
          const m = yield* store.open("ranked")
          yield* m.insert(corpus)
          return yield* Effect.all([m.getMostRecent(3, { user: "u1" }), m.getMostRelevant(["database migration"], 3), m.getMostRelevant(["database"], 3, { type: "image" })])
        })
      const onServer = yield* answers("array").pipe(Effect.provide(instance()))
      const embedded = yield* answers("pgvector").pipe(Effect.provide(EmbeddedStoreLive({ dataDir: "memory://", dimensions: 256 })))
      expect(onServer).toEqual(embedded)
    }), 60_000)

  it.live("holds at most maxConnections for 200 sources, and none once released", () =>
    Effect.gen(function* () {
      const app = `pantheon-pool-${Math.random().toString(36).slice(2, 8)}`
      const scope = yield* Scope.make()
      const runtime = yield* Layer.toRuntime(instance({ maxConnections: 4, applicationName: app, cache: { capacity: 256 } })).pipe(Scope.extend(scope))
      const run = <A, E, R>(e: Effect.Effect<A, E, R>) => Effect.provide(e, runtime.context as Context.Context<R>)
      const ids = Array.from({ length: 200 }, (_, i) => `pool_${i}`)
      yield* run(
        Effect.gen(function* () {
          const store = yield* SqlStore
          yield* Effect.forEach(ids, (id) => Effect.flatMap(store.registerSource(id), () => Effect.flatMap(store.open(id), (m) => m.insert([{ ...corpus[0]!, id: `${id}-1`, text: `${corpus[0]!.text} in ${id}` }]))), { concurrency: 16, discard: true })
        })
      )
      let peak = 0
      const monitor = yield* Effect.fork(
        Effect.forever(
          Effect.flatMap(Effect.promise(() => connectionsOf(app)), (n) => Effect.sync(() => void (peak = Math.max(peak, n)))).pipe(Effect.delay("5 millis"))
        )
      )
      const messages = yield* run(
        Effect.flatMap(ContextCompiler, (c) =>
          Effect.all(
            Array.from({ length: 8 }, (_, k) => c.compile({ sources: ids.filter((_, i) => i % 8 === k || k === 0).map((id) => ({ id })), texts: ["database migration"], limit: 2 })),
            { concurrency: "unbounded" }
          )
        )
      )
      yield* Fiber.interrupt(monitor)
      expect(messages[0]!.length).toBeGreaterThan(0)
      const stats = yield* run(Effect.flatMap(ManagerCache, (c) => c.stats))
      expect(stats.loads).toBe(200)
      expect(peak).toBeGreaterThan(0)
      expect(peak).toBeLessThanOrEqual(4)
      yield* Scope.close(scope, Exit.void)
      expect(yield* Effect.promise(() => until(async () => (await connectionsOf(app)) === 0))).toBe(true)
    }), 120_000)

  /** Two independent instances (own layers, pools and listeners) on one database. */
  const twoInstances = async (bUrl?: string) => {
    const a = ManagedRuntime.make(instance())
    const b = ManagedRuntime.make(instance(bUrl ? { url: bUrl } : {}))
    await a.runPromise(Effect.void)
    await b.runPromise(Effect.void)
    return { a, b, dispose: () => Promise.all([a.dispose(), b.dispose()]) }
  }

  it("drops a malformed notification (logged), and the next event still arrives", async () => {
    const { a, b, dispose } = await twoInstances()
    try {
      const seen: Array<string> = []
      await b.runPromise(
        Effect.flatMap(StoreEvents, (events) =>
          Effect.forkDaemon(Effect.scoped(Effect.flatMap(events.stream, (stream) => Stream.runForEach(stream, (e) => Effect.sync(() => void seen.push(e._tag))))))
        )
      )
      await new Promise((r) => setTimeout(r, 50))
      for (const payload of ["not json", JSON.stringify({ origin: "x", event: { _tag: "SourceAdded" } }), JSON.stringify({ origin: "x", event: { _tag: "Nonsense", id: "a" } })]) {
        await query("SELECT pg_notify($1, $2)", [channel, payload])
      }
      await a.runPromise(Effect.flatMap(SqlStore, (s) => s.registerSource("after_garbage")))
      expect(await until(async () => seen.includes("SourceAdded"))).toBe(true)
      expect(seen).toEqual(["SourceAdded"])
      expect(await b.runPromise(Effect.flatMap(StoreEvents, (events) => events.connected))).toBe(true)
    } finally {
      await dispose()
    }
  }, 60_000)

  it("a change on one instance reaches the other's registry and cache", async () => {
    const { a, b, dispose } = await twoInstances()
    try {
      await a.runPromise(Effect.flatMap(SqlStore, (s) => s.registerSource("shared", { label: "v1" })))
      // B sees the new source without waiting for its catalog ttl (10 minutes here).
      const catalogOfB = () => b.runPromise(Effect.flatMap(StoreManagerRegistry, (r) => Effect.map(r.catalog, (c) => c.descriptors)))
      expect(await until(async () => (await catalogOfB()).some((d) => d.id === "shared"))).toBe(true)
      await b.runPromise(Effect.flatMap(ManagerCache, (c) => c.get("shared")))
      const keysOfB = () => b.runPromise(Effect.flatMap(ManagerCache, (c) => c.keys))
      expect(await keysOfB()).toContain("shared")

      // A re-labels it: B drops the manager it holds.
      await a.runPromise(Effect.flatMap(SqlStore, (s) => s.registerSource("shared", { label: "v2" })))
      expect(await until(async () => !(await keysOfB()).includes("shared"))).toBe(true)
      expect((await catalogOfB()).find((d) => d.id === "shared")?.label).toBe("v2")

      // An explicit invalidate on A, one id and then all.
      await b.runPromise(Effect.flatMap(ManagerCache, (c) => c.get("shared")))
      await a.runPromise(Effect.flatMap(StoreEvents, (events) => events.publish(Invalidated.make({ id: "shared" }))))
      expect(await until(async () => !(await keysOfB()).includes("shared"))).toBe(true)
      await b.runPromise(Effect.flatMap(ManagerCache, (c) => c.get("shared")))
      await a.runPromise(Effect.flatMap(StoreEvents, (events) => events.publish(Invalidated.make({ id: null }))))
      expect(await until(async () => (await keysOfB()).length === 0)).toBe(true)

      // A write on A retires B's cached query results at once.
      const recentOnB = () => b.runPromise(Effect.flatMap(ManagerCache, (c) => Effect.flatMap(c.get("shared"), (m) => m.getMostRecent(1))))
      expect(await recentOnB()).toEqual([])
      await a.runPromise(Effect.flatMap(SqlStore, (s) => Effect.flatMap(s.open("shared"), (m) => m.insert([corpus[0]!]))))
      expect(await until(async () => (await recentOnB()).length === 1)).toBe(true)

      // A removes it: B's catalog loses it.
      await a.runPromise(Effect.flatMap(SqlStore, (s) => s.removeSource("shared")))
      expect(await until(async () => !(await catalogOfB()).some((d) => d.id === "shared"))).toBe(true)
    } finally {
      await dispose()
    }
  }, 60_000)

  it("survives an outage: typed errors within loadTimeout, then recovery and a resync without a restart", async () => {
    const proxy = await makeProxy()
    const { a, b, dispose } = await twoInstances(proxy.url(db.url))
    try {
      await a.runPromise(Effect.flatMap(SqlStore, (s) => Effect.flatMap(s.registerSource("before"), () => s.registerSource("other"))))
      await b.runPromise(Effect.flatMap(StoreManagerRegistry, (r) => r.invalidateCatalog))
      await b.runPromise(Effect.flatMap(ManagerCache, (c) => c.get("before")))

      await proxy.cut()
      // A load that has to read the catalog again: a typed failure within loadTimeout (2 s), not a hang.
      await b.runPromise(Effect.flatMap(StoreManagerRegistry, (r) => r.invalidateCatalog))
      const started = Date.now()
      const loadError = await b.runPromise(Effect.flip(Effect.flatMap(StoreManagerRegistry, (r) => r.load("other"))))
      expect(Date.now() - started).toBeLessThan(4000)
      expect(loadError._tag).toBe("CatalogUnavailable")
      // A cached (warm) manager still answers from memory; a write through it fails with a typed error.
      const manager = await b.runPromise(Effect.flatMap(ManagerCache, (c) => c.get("before")))
      expect(await b.runPromise(manager.getMostRecent(1))).toEqual([])
      const writeError = await b.runPromise(Effect.flip(manager.insert([corpus[0]!])))
      expect(writeError._tag).toBe("StoreQueryError")
      expect(await until(async () => !(await b.runPromise(Effect.flatMap(StoreEvents, (events) => events.connected))))).toBe(true)

      // While B is cut off, A registers a source: B must not miss it.
      await a.runPromise(Effect.flatMap(SqlStore, (s) => s.registerSource("during")))
      await proxy.restore()
      expect(await until(() => b.runPromise(Effect.flatMap(StoreEvents, (events) => events.connected)), 15_000)).toBe(true)
      const catalog = () => b.runPromise(Effect.flatMap(StoreManagerRegistry, (r) => Effect.map(r.catalog, (c) => c.descriptors)))
      expect(await until(async () => (await catalog()).some((d) => d.id === "during"))).toBe(true)
      expect(await b.runPromise(Effect.flatMap(ManagerCache, (c) => Effect.flatMap(c.get("before"), (m) => m.getMostRecent(1))))).toEqual([])
      expect(await b.runPromise(Effect.flatMap(StoreManagerRegistry, (r) => Effect.as(r.load("other"), "ok")))).toBe("ok")
    } finally {
      await dispose()
      await proxy.close()
    }
  }, 90_000)
})
