/**
 * The server in trouble: a warm manager whose catch-up read fails answers from what it holds
 * (counted, logged once) and catches up when the database is back, through the loopback proxy the
 * outage tests cut and restore; a statement past its deadline is cancelled on the server, so
 * abandoned work never fills the pool.
 */
import { Effect, Layer, Logger, ManagedRuntime, Metric, MetricLabel, Stream } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { Embedder } from "../../src/embedding/Embedder.js"
import { PersistenceAdapterLive } from "../../src/layers/PersistenceAdapterLive.js"
import { PostgresStoreLive } from "../../src/layers/PostgresStoreLive.js"
import { cacheStaleServed, sourceTimeouts } from "../../src/metrics.js"
import { health } from "../../src/layers/health.js"
import { ContextCompiler } from "../../src/services/ContextCompiler.js"
import { StoreEvents } from "../../src/services/StoreEvents.js"
import { SqlStore } from "../../src/stores/sql/SqlStore.js"
import { entriesTable } from "../../src/stores/sql/storage.js"
import pg from "pg"
import { makeProxy, query, schemaForFile } from "../support/postgres.js"

const db = await schemaForFile("outage")
const channel = `pantheon_outage_${Math.random().toString(36).slice(2, 8)}`

const instance = (url: string, logs: Array<string> = []) =>
  PersistenceAdapterLive({ cache: { ttl: "10 minutes", loadTimeout: "2 seconds", failureTtl: 0 } }).pipe(
    Layer.provideMerge(
      PostgresStoreLive({ url, channel, maxConnections: 4, applicationName: "pantheon-outage", connectTimeout: "2 seconds", embedder: Embedder.layerFeatureHashing({ dimensions: 64 }) })
    ),
    Layer.provideMerge(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void logs.push((Array.isArray(message) ? message : [message]).join(" ")))))
  )

const until = async (check: () => Promise<boolean>, ms = 15_000) => {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check()) return true
    await new Promise((r) => setTimeout(r, 20))
  }
  return false
}

const warmStale = () => Effect.runPromise(Metric.value(Metric.taggedWithLabels(cacheStaleServed, [MetricLabel.make("cache", "warm")]))).then((s) => s.count)
const entry = (i: number) => ({ id: `e${i}`, text: `entry ${i}`, timestamp: 1_700_000_000_000 + i * 1000, metadata: { displayName: "Ann" } })

const runtimes: Array<{ dispose: () => Promise<void> }> = []
afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.dispose()))
})

describe.skipIf(!db.up)("a warm manager in an outage", () => {
  it("serves what it holds when its catch-up read fails (counted as stale served, logged once), and catches up when the database is back", async () => {
    const proxy = await makeProxy()
    const logs: Array<string> = []
    const a = ManagedRuntime.make(instance(proxy.url(db.url), logs))
    const b = ManagedRuntime.make(instance(db.url))
    runtimes.push(a, b, { dispose: proxy.close })
    await b.runPromise(Effect.flatMap(SqlStore, (s) => Effect.flatMap(s.registerSource("chat"), () => Effect.flatMap(s.open("chat"), (m) => m.insert([1, 2, 3].map(entry))))))
    const compileOnA = () => a.runPromise(Effect.flatMap(ContextCompiler, (c) => c.compile({ sources: [{ id: "chat" }], onSourceError: "fail" })))
    const texts = async () => (await compileOnA()).map((m) => m.content.replace(/^.*: /, ""))
    expect(await texts()).toEqual(["entry 1", "entry 2", "entry 3"])

    // A hears of a write on B (its high water moves past what it holds) just before the database goes away.
    const heard: Array<string> = []
    await a.runPromise(
      Effect.flatMap(StoreEvents, (events) => Effect.forkDaemon(Effect.scoped(Effect.flatMap(events.stream, (s) => Stream.runForEach(s, (e) => Effect.sync(() => void heard.push(e._tag)))))))
    )
    await b.runPromise(Effect.flatMap(SqlStore, (s) => Effect.flatMap(s.open("chat"), (m) => m.insert([entry(4)]))))
    expect(await until(async () => heard.includes("DataWritten"))).toBe(true)
    await proxy.cut()

    const before = await warmStale()
    expect(await texts()).toEqual(["entry 1", "entry 2", "entry 3"])
    expect(await texts()).toEqual(["entry 1", "entry 2", "entry 3"])
    // Each compile asks three times (recent, then relevant and images, seeded by the recent texts).
    expect((await warmStale()) - before).toBe(6)
    expect(logs.filter((l) => l.includes("serving what it holds"))).toHaveLength(1)
    expect(logs.find((l) => l.includes("serving what it holds"))).toMatch(/^source chat: serving what it holds, its catch-up read failed: /)

    await proxy.restore()
    // Back: the manager catches up (or, once the listener is back, the resync reloads it).
    expect(await until(async () => (await texts()).includes("entry 4"))).toBe(true)
  }, 90_000)
})

describe.skipIf(!db.up)("a statement past its deadline", () => {
  it("is cancelled on the server: after 20 compiles over a source that never answers, no statement of ours is left running, and the source is reported", async () => {
    const app = "pantheon-cancel"
    const logs: Array<string> = []
    const runtime = ManagedRuntime.make(
      PersistenceAdapterLive({ cache: { queryTimeout: "300 millis", warmBytes: 0, failureTtl: 0 } }).pipe(
        Layer.provideMerge(
          PostgresStoreLive({ url: db.url, channel, maxConnections: 4, applicationName: app, resultCache: false, embedder: Embedder.layerFeatureHashing({ dimensions: 64 }) })
        ),
        Layer.provideMerge(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void logs.push((Array.isArray(message) ? message : [message]).join(" ")))))
      )
    )
    const timeouts = () => Effect.runPromise(Metric.value(Metric.tagged(sourceTimeouts, "source", "slow"))).then((c) => c.count)
    runtimes.push(runtime)
    await runtime.runPromise(Effect.flatMap(SqlStore, (s) => Effect.flatMap(s.registerSource("slow"), () => Effect.flatMap(s.open("slow"), (m) => m.insert([1, 2].map(entry))))))
    const compile = (i: number) => runtime.runPromise(Effect.flatMap(ContextCompiler, (c) => c.compile({ sources: [{ id: "slow" }], texts: [`question ${i}`] })))
    expect(await compile(0)).toHaveLength(2)
    const timeoutsBefore = await timeouts()

    // The source never answers: another session holds its table locked, so every read of it waits.
    const [{ storage }] = await runtime.runPromise(Effect.flatMap(SqlStore, (s) => s.catalog)).then((c) => c.filter((d) => d.id === "slow") as unknown as Array<{ storage: number }>)
    const table = entriesTable(storage)
    const locker = new pg.Client({ connectionString: db.url })
    await locker.connect()
    try {
      await locker.query(`BEGIN; LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`)
      // Each compile ends at its deadline with the source skipped (three times the pool's connections at once).
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => compile(i + 1)))
      expect(answers.map((a) => a.length), JSON.stringify(answers[0])).toEqual(answers.map(() => 0))
      const running = () =>
        query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'", [app]).then((r) => Number(r[0]!.n))
      const deadline = Date.now() + 1000
      let left = await running()
      while (left > 0 && Date.now() < deadline) left = await running()
      expect(left).toBe(0)
      // Reported, not silently reduced: counted by source, one warning for the streak, listed by the health report.
      expect((await timeouts()) - timeoutsBefore).toBe(20)
      expect(logs.filter((l) => l.startsWith("source slow: getMostRecent did not answer within 300ms (queryTimeout)"))).toHaveLength(1)
      expect(logs.filter((l) => l.includes("skipping source slow"))).toEqual([])
      expect((await runtime.runPromise(health)).slowSources).toMatchObject([{ id: "slow", operations: ["getMostRecent"], compiles: 20, timeouts: 20 }])
    } finally {
      await locker.query("ROLLBACK").catch(() => {})
      await locker.end()
    }
    // The pool is free again: the source answers once it can.
    expect(await compile(99)).toHaveLength(2)
    expect((await runtime.runPromise(health)).slowSources).toEqual([])
  }, 90_000)
})
