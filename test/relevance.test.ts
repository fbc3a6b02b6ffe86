/**
 * Context that finds the question's evidence: the analyzer, question-led seeds, entries of the
 * recent block spending no relevance slot, the budget by relevance and the token budget, through
 * the real compile on the embedded store; and the migration that gives an older store its
 * lexical columns.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Either, Layer, Metric } from "effect"
import { loadTokenCount } from "../src/domain/tokens.js"
import { MESSAGE_OVERHEAD_TOKENS } from "../src/domain/compile.js"
import { Embedder } from "../src/embedding/Embedder.js"
import { managersBackend } from "../src/layers/backends.js"
import { PersistenceAdapterLive } from "../src/layers/PersistenceAdapterLive.js"
import * as M from "../src/metrics.js"
import { documentText, STOP_WORDS, termCounts, terms, tsvectorLiteral } from "../src/relevance/analyzer.js"
import { ContextCompiler } from "../src/services/ContextCompiler.js"
import { StoreEvents } from "../src/services/StoreEvents.js"
import { PgliteClient } from "../src/stores/sql/PgliteClient.js"
import * as Sql from "../src/stores/sql/SqlStore.js"
import { entriesTable } from "../src/stores/sql/storage.js"
import { cannedManager, entry } from "./support/doubles.js"

describe("the analyzer", () => {
  it("drops English stop words, stems English words, keeps other scripts' words whole", () => {
    expect(terms("When did Melanie paint a sunrise? She's painting again")).toEqual(["melani", "paint", "sunris", "paint"])
    expect(terms("Ünïcödé Straße 東京タワー 42nd")).toEqual(["ünïcödé", "straße", "東京タワー", "42nd"])
    expect(terms("the of and")).toEqual([])
    expect(terms(`id ${"x".repeat(65)} ${"é".repeat(64)}`)).toEqual(["id", "é".repeat(64)])
    expect(STOP_WORDS.has("she")).toBe(true)
  })

  it("indexes the author's name with the text, and an image by its caption", () => {
    expect(documentText({ text: "went hiking", metadata: { displayName: "Ann" } })).toBe("Ann went hiking")
    expect(documentText({ text: "https://x/1.png", metadata: { type: "IMAGE", caption: "a red kite", name: "Bo" } })).toBe("Bo a red kite")
  })

  it("writes each term with as many positions as its count, so PostgreSQL keeps the count", () => {
    expect(tsvectorLiteral(termCounts(["paint", "kite", "paint"]))).toBe("'paint':1,2 'kite':1")
    expect(termCounts(Array.from({ length: 300 }, () => "x")).get("x")).toBe(256)
  })
})

const Embedded = Layer.mergeAll(PgliteClient.layer({ dataDir: "memory://" }), Embedder.layerFeatureHashing({ dimensions: 64 }), StoreEvents.layerLocal)
const Stores = Sql.SqlStore.layer({ resultCache: false }).pipe(Layer.provideMerge(Embedded))

/** A conversation: filler turns around a few that answer questions, the newest last. */
const conversation = (id: string) => {
  const filler = ["sounds great", "haha yes", "how was your day", "pretty good thanks", "same here", "talk soon"]
  const turns = Array.from({ length: 80 }, (_, i) => filler[i % filler.length]! + ` ${i}`)
  turns[10] = "I finally joined the pottery class downtown"
  turns[11] = "oh nice, what did you make there?"
  turns[40] = "we adopted a puppy named Biscuit last week"
  return turns.map((text, i) => ({ id: `${id}-${i}`, text, timestamp: 1_700_000_000_000 + i * 60_000, metadata: { displayName: i % 2 === 0 ? "Ann" : "Bo" } }))
}

const compileOn = (store: Sql.SqlStoreShape, request: Record<string, unknown>) =>
  Effect.gen(function* () {
    const runtime = yield* Layer.toRuntime(
      PersistenceAdapterLive({ cache: { ttl: "1 hour" } }).pipe(Layer.provide(Sql.SqlStore.backend), Layer.provide(Layer.succeed(Sql.SqlStore, store)), Layer.provide(StoreEvents.layerLocal))
    )
    return yield* Effect.provide(Effect.flatMap(ContextCompiler, (c) => c.compile(request)), runtime)
  })

layer(Stores, { timeout: "60 seconds" })("a compile on our stores", (it) => {
  it.scoped("brings each question's own evidence, not the recent turns' look-alikes", () =>
    Effect.gen(function* () {
      const store = yield* Sql.SqlStore
      yield* store.registerSource("talk")
      yield* (yield* store.open("talk")).insert(conversation("talk"))
      const pottery = yield* compileOn(store, { sources: [{ id: "talk" }], texts: ["When did Ann go to the pottery class?"] })
      const puppy = yield* compileOn(store, { sources: [{ id: "talk" }], texts: ["What is the name of the puppy?"] })
      expect(pottery.some((m) => m.content.includes("pottery class downtown"))).toBe(true)
      expect(pottery.some((m) => m.content.includes("what did you make there"))).toBe(true) // the turn after: context
      expect(puppy.some((m) => m.content.includes("puppy named Biscuit"))).toBe(true)
      expect(pottery.map((m) => m.content)).not.toEqual(puppy.map((m) => m.content))
    }))

  it.scoped("lets the recent block spend no relevance slot, and keeps a token budget most relevant first", () =>
    Effect.gen(function* () {
      const store = yield* Sql.SqlStore
      yield* store.registerSource("budget")
      const turns = conversation("budget")
      yield* (yield* store.open("budget")).insert(turns)
      // The two newest turns are recent; the two relevance slots still go to two matches besides them.
      const small = yield* compileOn(store, { sources: [{ id: "budget" }], texts: ["talk soon"], recentLimit: 2, limit: 2 })
      const recent = turns.slice(-2).map((t) => t.text)
      expect(small).toHaveLength(4)
      expect(recent.every((text) => small.some((m) => m.content.endsWith(text)))).toBe(true)
      expect(small.filter((m) => !recent.some((text) => m.content.endsWith(text))).every((m) => m.content.includes("talk soon"))).toBe(true)
      // A token budget: never above it, and the question's best evidence first.
      const count = yield* loadTokenCount
      const full = yield* compileOn(store, { sources: [{ id: "budget" }], texts: ["pottery class"] })
      const tokensOf = (ms: ReadonlyArray<{ content: string }>) => ms.reduce((n, m) => n + count(m.content) + MESSAGE_OVERHEAD_TOKENS, 0)
      const budget = 60
      const cut = yield* compileOn(store, { sources: [{ id: "budget" }], texts: ["pottery class"], maxTokens: budget })
      expect(tokensOf(full)).toBeGreaterThan(budget)
      expect(tokensOf(cut)).toBeLessThanOrEqual(budget)
      expect(cut.some((m) => m.content.includes("pottery class downtown"))).toBe(true)
      // Still in time order.
      expect(cut.map((m) => full.findIndex((f) => f.content === m.content))).toEqual([...cut.map((m) => full.findIndex((f) => f.content === m.content))].sort((a, b) => a - b))
    }))

  it.effect("gives a store of the previous layout its lexical columns, computed for the rows it holds", () =>
    Effect.gen(function* () {
      const store = yield* Sql.SqlStore
      const descriptor = yield* store.registerSource("older")
      yield* (yield* store.open("older")).insert(conversation("older"))
      const sql = yield* SqlClient.SqlClient
      const table = sql(entriesTable(descriptor.storage))
      // What a layout-2 store looks like: no lexical columns, no index.
      yield* sql`ALTER TABLE ${table} DROP COLUMN lexemes, DROP COLUMN dl`
      yield* sql`UPDATE pantheon_meta SET value = '2' WHERE key = 'layout'`
      const migrated = yield* Sql.make({ resultCache: false })
      const [row] = yield* sql<{ n: number | string; layout: string }>`SELECT count(*) FILTER (WHERE lexemes IS NOT NULL AND dl IS NOT NULL) AS n, (SELECT value FROM pantheon_meta WHERE key = 'layout') AS layout FROM ${table}`
      expect([Number(row!.n), row!.layout]).toEqual([80, "3"])
      const found = yield* (yield* migrated.open("older")).getMostRelevant(["puppy Biscuit"], 1)
      expect(found.map((e) => e.text)).toEqual(["we adopted a puppy named Biscuit last week"])
    }).pipe(Effect.scoped))
})

describe("a compile on the caller's managers", () => {
  const manager = cannedManager("chat", { recent: [entry("newest", "2024-01-01T00:00:02Z"), entry("older", "2024-01-01T00:00:01Z")] })
  it.scoped("asks getMostRelevant with the reference's seeds, and refuses a token budget that is not a whole number", () =>
    Effect.gen(function* () {
      const compiler = yield* ContextCompiler
      yield* compiler.compile({ sources: [{ id: "chat" }], texts: ["question"] })
      expect(manager.calls.relevant.map((c) => c.queries)).toEqual([["question", "newest", "older"], ["question", "newest", "older"]])
      const refused = yield* Effect.either(compiler.compile({ sources: [{ id: "chat" }], maxTokens: 10.5 }))
      expect(Either.isLeft(refused) && refused.left._tag === "InvalidCompileRequest" && refused.left.field).toBe("maxTokens")
      const before = (yield* Metric.value(M.compileTokens)).count
      yield* compiler.compile({ sources: [{ id: "chat" }] })
      expect((yield* Metric.value(M.compileTokens)).count).toBe(before + 1)
    }).pipe(Effect.provide(PersistenceAdapterLive({ cache: { ttl: "1 minute" } }).pipe(Layer.provide(managersBackend([manager]))))))
})
