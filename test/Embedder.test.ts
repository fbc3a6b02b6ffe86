import { describe, expect, it } from "@effect/vitest"
import { FetchHttpClient } from "@effect/platform"
import { Effect, Either, Metric } from "effect"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { cached } from "../src/embedding/cached.js"
import type { EmbedderShape } from "../src/embedding/Embedder.js"
import { featureHashing, featureHashingVector } from "../src/embedding/hashing.js"
import { ollama } from "../src/embedding/ollama.js"
import * as M from "../src/metrics.js"

const cosine = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0)

describe("featureHashing", () => {
  it("is deterministic and unit length", () => {
    const a = featureHashingVector("The cat sat on the mat", 256)
    expect(a).toEqual(featureHashingVector("the CAT sat on the mat!", 256))
    expect(cosine(a, a)).toBeCloseTo(1, 5)
    expect(featureHashingVector("", 64).every((x) => x === 0)).toBe(true)
  })

  it("scores shared words and phrases above unrelated text", () => {
    const q = featureHashingVector("database migration timeout", 256)
    expect(cosine(q, featureHashingVector("the database migration timed out", 256))).toBeGreaterThan(
      cosine(q, featureHashingVector("two pizzas and a salad", 256))
    )
  })
})

/** The model under the cache, counting the texts it is asked to embed. */
const counting = (dimensions = 8) => {
  const base = featureHashing(dimensions)
  const asked: Array<string> = []
  const model: EmbedderShape = { ...base, embed: (texts) => Effect.suspend(() => (asked.push(...texts), base.embed(texts))) }
  return { model, asked }
}

describe("the embedding cache", () => {
  it.scoped("embeds each text once, however often and however concurrently it is asked", () =>
    Effect.gen(function* () {
      const { model, asked } = counting()
      const embedder = yield* cached(model)
      yield* Effect.all(Array.from({ length: 20 }, () => embedder.embed(["a", "b", "a"])), { concurrency: "unbounded" })
      yield* embedder.embed(["b", "c"])
      expect(asked.sort()).toEqual(["a", "b", "c"])
      const stats = yield* embedder.stats
      expect(stats.entries).toBe(3)
      expect(stats.hits + stats.misses).toBe(3 * 20 + 2)
      expect(stats.misses).toBeGreaterThanOrEqual(4) // a, b, the second a (waiting for the first) and c
    }))

  it.scoped("answers with the same vectors as the model, in order", () =>
    Effect.gen(function* () {
      const embedder = yield* cached(featureHashing(32))
      const [x, y] = yield* embedder.embed(["x", "y"])
      expect(x).toEqual(featureHashingVector("x", 32))
      expect(y).toEqual(featureHashingVector("y", 32))
    }))

  it.scoped("stays within its byte bound, dropping the least recently used", () =>
    Effect.gen(function* () {
      const embedder = yield* cached(featureHashing(64), 1024)
      for (let i = 0; i < 50; i++) yield* embedder.embed([`text ${i}`])
      const stats = yield* embedder.stats
      expect(stats.bytes).toBeLessThanOrEqual(1024)
      expect(stats.entries).toBeGreaterThan(0)
      expect(stats.entries).toBeLessThan(50)
    }))

  it.scoped("counts hits and misses in metrics", () =>
    Effect.gen(function* () {
      const hits = M.tagged(M.cacheHits, "embeddings")
      const misses = M.tagged(M.cacheMisses, "embeddings")
      const before = [(yield* Metric.value(hits)).count, (yield* Metric.value(misses)).count]
      const embedder = yield* cached(featureHashing(8))
      yield* embedder.embed(["m1", "m2"])
      yield* embedder.embed(["m1"])
      expect((yield* Metric.value(hits)).count - before[0]!).toBe(1)
      expect((yield* Metric.value(misses)).count - before[1]!).toBe(2)
    }))

  it.scoped("shares a failure with every waiter and caches nothing from it", () =>
    Effect.gen(function* () {
      let fail = true
      const base = featureHashing(8)
      const embedder = yield* cached({ ...base, embed: (t) => (fail ? Effect.dieMessage("model down") : base.embed(t)) })
      const failed = yield* Effect.exit(embedder.embed(["q"]))
      expect(failed._tag).toBe("Failure")
      fail = false
      expect(yield* embedder.embed(["q"])).toHaveLength(1)
    }))
})

/** A loopback server that speaks Ollama's /api/embed. */
const ollamaServer = (dimensions: number, behaviour: { fail?: boolean } = {}) =>
  Effect.acquireRelease(
    Effect.async<{ url: string; requests: Array<unknown>; server: Server }>((resume) => {
      const requests: Array<unknown> = []
      const server = createServer((req, res) => {
        let body = ""
        req.on("data", (c) => (body += c))
        req.on("end", () => {
          if (req.method !== "POST" || req.url !== "/api/embed") {
            res.writeHead(404).end()
            return
          }
          const parsed = JSON.parse(body) as { model: string; input: Array<string> }
          requests.push(parsed)
          if (behaviour.fail) {
            res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ error: "model not loaded" }))
            return
          }
          const embeddings = parsed.input.map((t) => Array.from(featureHashingVector(t, dimensions), (x) => x * 3))
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ model: parsed.model, embeddings }))
        })
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server })))
    }),
    ({ server }) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
  )

describe("ollama", () => {
  it.live("embeds through /api/embed, learns the dimensions and normalises", () =>
    Effect.gen(function* () {
      const server = yield* ollamaServer(16)
      const embedder = yield* ollama({ url: server.url, model: "test-model" })
      expect(embedder.dimensions).toBe(16)
      expect(embedder.model).toBe("ollama:test-model")
      const [v] = yield* embedder.embed(["hello world"])
      expect(cosine(v!, v!)).toBeCloseTo(1, 5)
      expect(server.requests.at(-1)).toEqual({ model: "test-model", input: ["hello world"] })
    }).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer)))

  it.live("fails with a typed EmbedError when the server errors or is unreachable", () =>
    Effect.gen(function* () {
      const server = yield* ollamaServer(16, { fail: true })
      const down = yield* Effect.either(ollama({ url: server.url }))
      expect(Either.isLeft(down) && down.left._tag).toBe("EmbedError")
      const nobody = yield* Effect.either(ollama({ url: "http://127.0.0.1:9", timeout: "2 seconds" }))
      expect(Either.isLeft(nobody) && nobody.left._tag).toBe("EmbedError")
    }).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer)))
})

