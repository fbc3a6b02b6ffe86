import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { EmbeddedStoreLive } from "../src/layers/EmbeddedStoreLive.js"
import { MetricsServer } from "../src/layers/MetricsServerLive.js"
import { PersistenceAdapterLive } from "../src/layers/PersistenceAdapterLive.js"
import { promiseBackend } from "../src/layers/backends.js"
import { ContextCompiler } from "../src/services/ContextCompiler.js"
import { SqlStore } from "../src/stores/sql/SqlStore.js"
import { corpus } from "./support/corpus.js"

const get = (url: string) => Effect.promise(async () => {
  const res = await fetch(url)
  return { status: res.status, type: res.headers.get("content-type"), body: await res.text() }
})

describe("the metrics endpoint", () => {
  it.live("serves every metric in Prometheus text format, and /healthz", () =>
    Effect.gen(function* () {
      const store = yield* SqlStore
      yield* store.registerSource("chat")
      yield* (yield* store.open("chat")).insert(corpus)
      const compiler = yield* ContextCompiler
      for (let i = 0; i < 3; i++) yield* compiler.compile({ sources: [{ id: "chat" }], texts: ["database"] })
      const { url } = yield* MetricsServer
      const metrics = yield* get(`${url}/metrics`)
      expect(metrics.status).toBe(200)
      expect(metrics.type).toContain("text/plain")
      for (const name of [
        "pantheon_cache_hits_total",
        "pantheon_cache_misses_total",
        "pantheon_cache_loads_total",
        "pantheon_cache_size",
        "pantheon_cache_load_duration_ms_bucket",
        "pantheon_compile_total",
        "pantheon_compile_duration_ms_count"
      ]) expect(metrics.body, name).toMatch(new RegExp(`^${name}\\{`, "m"))
      expect(metrics.body).toMatch(/pantheon_cache_hits_total\{[^}]*cache="managers"[^}]*\} [1-9]/)
      expect(metrics.body).toMatch(/pantheon_cache_misses_total\{[^}]*cache="embeddings"[^}]*\} [1-9]/)
      const health = yield* get(`${url}/healthz`)
      expect(health.status).toBe(200)
      expect(JSON.parse(health.body)).toMatchObject({ status: "ok", store: { reachable: true, sources: 1 }, cache: { size: 1 }, slowSources: [] })
      expect((yield* get(`${url}/nope`)).status).toBe(404)
    }).pipe(
      Effect.provide(
        MetricsServer.layer({ port: 0 }).pipe(Layer.provideMerge(PersistenceAdapterLive({ cache: {} })), Layer.provideMerge(EmbeddedStoreLive({ dataDir: "memory://", dimensions: 64 })))
      )
    ), 60_000)

  it.live("answers 503 from /healthz when the store cannot be read", () =>
    Effect.gen(function* () {
      const { url } = yield* MetricsServer
      const health = yield* get(`${url}/healthz`)
      expect(health.status).toBe(503)
      expect(JSON.parse(health.body)).toMatchObject({ status: "degraded", store: { reachable: false } })
    }).pipe(
      Effect.provide(
        MetricsServer.layer({ port: 0 }).pipe(
          Layer.provideMerge(PersistenceAdapterLive({ cache: {} })),
          Layer.provideMerge(promiseBackend(() => Promise.reject(new Error("store is down"))))
        )
      )
    ), 30_000)
})
