/**
 * A source is one id, however many managers serve it: two managers with one name both serve that
 * source (the reference queries each), and dropping the source drops both, whichever way it is asked
 * for: the Promise facade, the Effect API, or an event from another instance (real PostgreSQL
 * LISTEN/NOTIFY).
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, ManagedRuntime, Redacted } from "effect"
import { Invalidated } from "../src/domain/events.js"
import { managersBackend } from "../src/layers/backends.js"
import { health } from "../src/layers/health.js"
import { PersistenceAdapterLive } from "../src/layers/PersistenceAdapterLive.js"
import { makePantheonPersistenceAdapter } from "../src/promise/makePantheonPersistenceAdapter.js"
import { ContextCompiler } from "../src/services/ContextCompiler.js"
import { ManagerCache } from "../src/services/ManagerCache.js"
import { StoreEvents } from "../src/services/StoreEvents.js"
import * as PgStoreEvents from "../src/stores/sql/PgStoreEvents.js"
import { cannedManager, entry } from "./support/doubles.js"
import { schemaForFile } from "./support/postgres.js"

const db = await schemaForFile("invalidate")

/** Two managers named chat and one named notes, each with one entry. */
const twoChats = () => [
  cannedManager("chat", { recent: [entry("chat one", "2024-01-01T00:00:01Z")] }),
  cannedManager("notes", { recent: [entry("a note", "2024-01-01T00:00:02Z")] }),
  cannedManager("chat", { recent: [entry("chat two", "2024-01-01T00:00:03Z")] })
]

/** The managers the cache holds, by source (`name`). */
const heldSources = Effect.flatMap(ManagerCache, (cache) => Effect.map(cache.values, (managers) => managers.map((m) => m.name).sort()))

const compileAll = Effect.flatMap(ContextCompiler, (c) => c.compile({ sources: [{ id: "chat" }, { id: "notes" }] }))

describe("invalidating a source served by two managers with one name", () => {
  it("through the Promise facade: both managers serve what the store holds after invalidate(id)", async () => {
    let version = 1
    // Each catalog read hands out new managers, whose entries name the read they came from.
    const chat = (which: string, read: number) => ({
      name: "chat",
      getMostRecent: async () => [entry(`${which} ${read}`, "2024-01-01T00:00:01Z")],
      getMostRelevant: async () => []
    })
    const adapter = makePantheonPersistenceAdapter({ getStoreManagers: async () => [chat("first", version), chat("second", version)] })
    try {
      const contents = async () => (await adapter.compile({ sources: [{ id: "chat" }] })).map((m) => m.content.replace(/^.*: /, ""))
      expect(await contents()).toEqual(["first 1", "second 1"])
      const before = await adapter.cacheStats()
      version = 2
      await adapter.invalidate("chat")
      expect(await contents()).toEqual(["first 2", "second 2"])
      const after = await adapter.cacheStats()
      expect(after.invalidations - before.invalidations).toBe(2)
      expect(after.loads - before.loads).toBe(2)
    } finally {
      await adapter.dispose()
    }
  })

  it.effect("through the Effect API: an Invalidated event and invalidateSource drop both, and only them", () =>
    Effect.gen(function* () {
      yield* compileAll
      expect(yield* heldSources).toEqual(["chat", "chat", "notes"])
      // The health report counts sources (ids), not managers.
      expect((yield* health).store).toMatchObject({ reachable: true, sources: 2, managers: 3 })
      yield* Effect.flatMap(StoreEvents, (events) => events.publish(Invalidated.make({ id: "chat" })))
      expect(yield* heldSources).toEqual(["notes"])

      yield* compileAll
      expect(yield* heldSources).toEqual(["chat", "chat", "notes"])
      yield* Effect.flatMap(ManagerCache, (cache) => cache.invalidateSource("chat"))
      expect(yield* heldSources).toEqual(["notes"])
    }).pipe(Effect.provide(PersistenceAdapterLive({ cache: { ttl: "10 minutes" } }).pipe(Layer.provideMerge(managersBackend(twoChats()))))))

  describe.skipIf(!db.up)("from another instance", () => {
    it("an Invalidated event published on one instance drops both managers on the other", async () => {
      const channel = `pantheon_test_${Math.random().toString(36).slice(2, 8)}`
      const url = Redacted.make(db.url)
      // The managers' own backend, with events over LISTEN/NOTIFY instead of its local ones (the later StoreEvents wins the merge).
      const events = PgStoreEvents.layer({ url, channel }).pipe(Layer.provide(PgClient.layer({ url, maxConnections: 2 })))
      const instance = () =>
        ManagedRuntime.make(PersistenceAdapterLive({ cache: { ttl: "10 minutes" } }).pipe(Layer.provideMerge(Layer.merge(managersBackend(twoChats()), events))))
      const a = instance()
      const b = instance()
      try {
        await b.runPromise(compileAll)
        expect(await b.runPromise(heldSources)).toEqual(["chat", "chat", "notes"])
        await a.runPromise(Effect.flatMap(StoreEvents, (e) => e.publish(Invalidated.make({ id: "chat" }))))
        const deadline = Date.now() + 5000
        let held = await b.runPromise(heldSources)
        while (held.length > 1 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 10))
          held = await b.runPromise(heldSources)
        }
        expect(held).toEqual(["notes"])
      } finally {
        await Promise.all([a.dispose(), b.dispose()])
      }
    }, 60_000)
  })
})
