import { expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { EmbeddedStoreLive } from "../src/layers/EmbeddedStoreLive.js"
import { PersistenceAdapterLive } from "../src/layers/PersistenceAdapterLive.js"
import { ContextCompiler } from "../src/services/ContextCompiler.js"
import { Embedder } from "../src/embedding/Embedder.js"
import { ManagerCache } from "../src/services/ManagerCache.js"
import { StoreManagerRegistry } from "../src/services/StoreManagerRegistry.js"
import { SqlStore } from "../src/stores/sql/SqlStore.js"
import { corpus } from "./support/corpus.js"
import { eventually } from "./support/eventually.js"

const Live = PersistenceAdapterLive({ cache: { ttl: "10 minutes" } }).pipe(Layer.provideMerge(EmbeddedStoreLive({ dataDir: "memory://" })))

layer(Live, { timeout: "60 seconds" })("PersistenceAdapterLive over the embedded store", (it) => {
  it.effect("compiles from real stores, loads each manager once, embeds each seed once", () =>
    Effect.gen(function* () {
      const store = yield* SqlStore
      for (const id of ["chat", "tasks"]) {
        yield* store.registerSource(id)
        yield* (yield* store.open(id)).insert(corpus.map((e) => ({ ...e, id: `${id}-${e.id}`, text: `${e.text} (${id})` })))
      }
      const compiler = yield* ContextCompiler
      const request = { sources: [{ id: "chat" }, { id: "tasks" }, { id: "missing" }], texts: ["why did the database migration fail?"], recentLimit: 2 }
      const embedder = yield* Embedder
      const before = yield* embedder.stats
      const first = yield* compiler.compile(request)
      const afterFirst = yield* embedder.stats
      // Our stores are asked with the question alone (2 managers × 2 relevance queries): it reaches the model once.
      expect(afterFirst.embedded - before.embedded).toBe(1)
      expect(first.some((m) => m.content.includes("database migration"))).toBe(true)
      expect(first.some((m) => m.images?.[0]?.startsWith("https://img.example/architecture.png"))).toBe(true)
      for (let i = 0; i < 10; i++) expect(yield* compiler.compile(request)).toEqual(first)
      const stats = yield* (yield* ManagerCache).stats
      expect(stats.loads).toBe(2)
      expect(stats.hits).toBe(20)
      expect((yield* embedder.stats).embedded).toBe(afterFirst.embedded)
    }))

  it.effect("a registration reaches the registry's catalog and the cache", () =>
    Effect.gen(function* () {
      const store = yield* SqlStore
      const registry = yield* StoreManagerRegistry
      const cache = yield* ManagerCache
      yield* store.registerSource("notes", { label: "v1" })
      yield* registry.invalidateCatalog
      yield* cache.get("notes")
      expect(yield* cache.keys).toContain("notes")
      yield* store.registerSource("notes", { label: "v2" })
      // The change travels through a stream: wait (bounded) until the cache dropped the old manager.
      yield* eventually(Effect.map(cache.keys, (keys) => !keys.includes("notes")))
      expect((yield* registry.catalog).descriptors.find((d) => d.id === "notes")).toMatchObject({ label: "v2", fingerprint: "2" })
    }))
})
