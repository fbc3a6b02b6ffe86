/** w6: a change on one instance, seen by another (PostgreSQL LISTEN/NOTIFY), over 100 changes. */
import { Effect, Layer, ManagedRuntime, Stream } from "effect"
import pg from "pg"
import { Embedder } from "../../src/embedding/Embedder.js"
import { PersistenceAdapterLive } from "../../src/layers/PersistenceAdapterLive.js"
import { PostgresStoreLive } from "../../src/layers/PostgresStoreLive.js"
import { StoreEvents } from "../../src/services/StoreEvents.js"
import { SqlStore } from "../../src/stores/sql/SqlStore.js"
import { results, sleep, table } from "../lib/report.js"
import { percentile, round } from "../lib/workload.js"

export const databaseUrl = process.env.PANTHEON_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"

export const w6 = async () => {
  const admin = new pg.Client({ connectionString: databaseUrl })
  try {
    await admin.connect()
  } catch (e) {
    console.log(`### w6: skipped, PostgreSQL at ${databaseUrl} is unreachable (${(e as Error).message})\n`)
    results.w6 = { skipped: String(e) }
    return
  }
  const schema = `bench_w6_${Math.random().toString(36).slice(2, 8)}`
  await admin.query(`CREATE SCHEMA ${schema}`)
  const url = new URL(databaseUrl)
  url.searchParams.set("options", `-c search_path=${schema}`)
  const app = `pantheon-bench-${schema}`
  const instance = () =>
    ManagedRuntime.make(
      PersistenceAdapterLive({ cache: { ttl: "10 minutes" } }).pipe(
        Layer.provideMerge(PostgresStoreLive({ url: url.toString(), channel: schema, applicationName: app, maxConnections: 10, embedder: Embedder.layerFeatureHashing() }))
      )
    )
  const a = instance()
  const b = instance()
  try {
    const seen = new Map<string, number>()
    await b.runPromise(
      Effect.flatMap(StoreEvents, (events) =>
        Effect.forkDaemon(Effect.scoped(Effect.flatMap(events.stream, (stream) =>
          Stream.runForEach(stream, (e) => Effect.sync(() => "fingerprint" in e && seen.set(`${e.id}:${e.fingerprint}`, performance.now())))
        )))
      )
    )
    await sleep(50)
    await a.runPromise(Effect.flatMap(SqlStore, (s) => s.registerSource("w6", { label: "0" })))
    const latencies: Array<number> = []
    for (let i = 1; i <= 100; i++) {
      const t0 = performance.now()
      const descriptor = await a.runPromise(Effect.flatMap(SqlStore, (s) => s.registerSource("w6", { label: String(i) })))
      const key = `w6:${descriptor.fingerprint}`
      while (!seen.has(key) && performance.now() - t0 < 5000) await sleep(0.2)
      latencies.push((seen.get(key) ?? Infinity) - t0)
    }
    const connections = Number((await admin.query("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1", [app])).rows[0].n)
    const row = { changes: latencies.length, p50Ms: round(percentile(latencies, 50)), p99Ms: round(percentile(latencies, 99)), maxMs: round(Math.max(...latencies)), connectionsOfTwoInstances: connections }
    results.w6 = row
    table("w6: propagation of a catalog change from instance A to instance B (PostgreSQL LISTEN/NOTIFY)", [row])
  } finally {
    await Promise.all([a.dispose(), b.dispose()])
    await admin.query(`DROP SCHEMA ${schema} CASCADE`)
    await admin.end()
  }
}
