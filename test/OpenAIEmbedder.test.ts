import { describe, expect, it } from "@effect/vitest"
import { FetchHttpClient } from "@effect/platform"
import { Cause, Chunk, ConfigProvider, Context, Effect, Either, Exit, Fiber, Layer, Redacted, TestClock, Tracer } from "effect"
import { createServer, type IncomingHttpHeaders } from "node:http"
import type { AddressInfo } from "node:net"
import { Embedder } from "../src/embedding/Embedder.js"
import { featureHashingVector } from "../src/embedding/hashing.js"
import { backoffMillis, batches, embeddingsUrl, openai, type OpenAIEmbedderConfig, orderedVectors, retryAfterMillis, serverMessage } from "../src/embedding/openai.js"

const KEY = "sk-test-a1b2c3d4e5f6"

interface Seen {
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly body: { model?: string; input: Array<string>; dimensions?: number; encoding_format?: string }
}
type Reply = { readonly status?: number; readonly headers?: Record<string, string>; readonly body: unknown } | "hang"

/** What a well-behaved server answers: one vector per text (3 × the feature-hashing vector, so not unit length). */
const answer = (seen: Seen, options: { dimensions?: number; reversed?: boolean; drop?: number } = {}): Reply => {
  const data = seen.body.input.map((text, index) => ({ object: "embedding", index, embedding: Array.from(featureHashingVector(text, options.dimensions ?? 16), (x) => x * 3) }))
  if (options.reversed) data.reverse()
  return { body: { object: "list", model: seen.body.model ?? "fake-embed", data: data.slice(options.drop ?? 0), usage: { prompt_tokens: 1, total_tokens: 1 } } }
}

/** A loopback server on a random port; `reply` decides each answer (`n` counts requests from 1). */
const fakeServer = (reply: (seen: Seen, n: number) => Reply = (seen) => answer(seen)) =>
  Effect.acquireRelease(
    Effect.async<{ url: string; seen: Array<Seen>; arrived: (n: number) => Promise<void>; close: () => Promise<void> }>((resume) => {
      const seen: Array<Seen> = []
      const waiters: Array<{ n: number; resolve: () => void }> = []
      const server = createServer((req, res) => {
        let text = ""
        req.on("data", (c) => (text += c))
        req.on("end", () => {
          const s: Seen = { url: req.url ?? "", headers: req.headers, body: JSON.parse(text) as Seen["body"] }
          seen.push(s)
          for (const w of waiters.filter((w) => w.n <= seen.length)) w.resolve()
          const r = reply(s, seen.length)
          if (r === "hang") return
          const body = typeof r.body === "string" ? r.body : JSON.stringify(r.body)
          res.writeHead(r.status ?? 200, { "content-type": "application/json", ...r.headers }).end(body)
        })
      })
      const arrived = (n: number) => (seen.length >= n ? Promise.resolve() : new Promise<void>((resolve) => void waiters.push({ n, resolve })))
      const close = () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections()
          server.close(() => resolve())
        })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, arrived, close })))
    }),
    (server) => Effect.promise(server.close)
  )

const make = (url: string, options: Partial<OpenAIEmbedderConfig> = {}) => openai({ url, model: "text-embed-test", apiKey: Redacted.make(KEY), ...options })

const HOUR = 3_600_000

/**
 * The wait of the retry now pending on the TestClock (the first sleep due before `before`, as a
 * duration from now). Attempts' deadlines are set an hour out, so a retry's wait is the only sleep due sooner.
 */
const pendingWait = (before = HOUR) =>
  Effect.gen(function* () {
    for (let i = 0; i < 2000; i++) {
      const now = yield* TestClock.currentTimeMillis
      const due = Chunk.toReadonlyArray(yield* TestClock.sleeps()).filter((t) => t > now && t < before)
      if (due.length > 0) return Math.min(...due) - now
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))
    }
    throw new Error("no retry was scheduled")
  })

const cosine = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0)

describe("OpenAI-compatible embedder: pure parts", () => {
  it("builds the endpoint from a base URL with or without /v1", () => {
    expect(embeddingsUrl("http://127.0.0.1:8000")).toBe("http://127.0.0.1:8000/v1/embeddings")
    expect(embeddingsUrl("http://127.0.0.1:8000/")).toBe("http://127.0.0.1:8000/v1/embeddings")
    expect(embeddingsUrl("https://api.openai.com/v1/")).toBe("https://api.openai.com/v1/embeddings")
    expect(embeddingsUrl("https://example.com/openai/v1")).toBe("https://example.com/openai/v1/embeddings")
    expect(embeddingsUrl("http://localhost:11434/v1/embeddings")).toBe("http://localhost:11434/v1/embeddings")
    expect(() => embeddingsUrl("not a url")).toThrow()
  })

  it("splits batches by text count and by characters, a long text alone", () => {
    expect(batches(["a", "b", "c", "d", "e"], 2, 100)).toEqual([[0, 2], [2, 4], [4, 5]])
    expect(batches(["aaaa", "bbbb", "cccc"], 10, 8)).toEqual([[0, 2], [2, 3]])
    expect(batches(["a", "x".repeat(50), "b"], 10, 8)).toEqual([[0, 1], [1, 2], [2, 3]])
    expect(batches([], 10, 8)).toEqual([])
  })

  it("backs off exponentially within 50-100 % of the doubled delay, capped", () => {
    expect(backoffMillis(1, 500, 30_000, 0)).toBe(250)
    expect(backoffMillis(1, 500, 30_000, 1)).toBe(500)
    expect(backoffMillis(3, 500, 30_000, 1)).toBe(2000)
    expect(backoffMillis(20, 500, 30_000, 1)).toBe(30_000)
  })

  it("reads retry-after-ms, Retry-After in seconds and as an HTTP date", () => {
    expect(retryAfterMillis({ "retry-after-ms": "1500", "retry-after": "9" }, 0)).toBe(1500)
    expect(retryAfterMillis({ "retry-after": "2" }, 0)).toBe(2000)
    expect(retryAfterMillis({ "retry-after": new Date(10_000).toUTCString() }, 4000)).toBe(6000)
    expect(retryAfterMillis({ "retry-after": "soon" }, 0)).toBeUndefined()
    expect(retryAfterMillis({}, 0)).toBeUndefined()
  })

  it("finds the server's message in the error bodies servers send", () => {
    expect(serverMessage(JSON.stringify({ error: { message: "Incorrect API key", type: "invalid_request_error" } }))).toBe("Incorrect API key")
    expect(serverMessage(JSON.stringify({ object: "error", message: "model not found" }))).toBe("model not found")
    expect(serverMessage(JSON.stringify({ detail: "Not Found" }))).toBe("Not Found")
    expect(serverMessage(JSON.stringify({ error: "overloaded" }))).toBe("overloaded")
    expect(serverMessage("<html>Bad Gateway</html>")).toBe("<html>Bad Gateway</html>")
  })

  it("orders vectors by index and refuses answers that do not fit the request", () => {
    expect(orderedVectors([{ index: 1, embedding: [1] }, { index: 0, embedding: [0] }], 2)).toEqual(Either.right([[0], [1]]))
    expect(Either.isLeft(orderedVectors([{ index: 0, embedding: [0] }], 2))).toBe(true)
    expect(Either.isLeft(orderedVectors([{ index: 0, embedding: [0] }, { index: 0, embedding: [1] }], 2))).toBe(true)
    expect(Either.isLeft(orderedVectors([{ index: 0, embedding: [0] }, { index: 2, embedding: [1] }], 2))).toBe(true)
  })
})

describe("OpenAI-compatible embedder against a local server", () => {
  it.scoped("probes at build, then posts model, input and encoding_format with the key as a Bearer header; vectors are unit length", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer()
      const embedder = yield* make(server.url)
      expect(embedder.model).toBe("openai:text-embed-test")
      expect(embedder.dimensions).toBe(16)
      const [v] = yield* embedder.embed(["hello world"])
      expect(cosine(v!, v!)).toBeCloseTo(1, 5)
      expect(cosine(v!, featureHashingVector("hello world", 16))).toBeCloseTo(1, 5)
      const last = server.seen.at(-1)!
      expect(last.url).toBe("/v1/embeddings")
      expect(last.body).toEqual({ model: "text-embed-test", input: ["hello world"], encoding_format: "float" })
      expect(last.headers.authorization).toBe(`Bearer ${KEY}`)
      expect((yield* embedder.stats).calls).toBe(2)
    }).pipe(Effect.provide(FetchHttpClient.layer)))

  it.scoped("with no model configured sends none and is named after the model the server reports; dimensions are sent when set", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer((seen) => answer(seen, { dimensions: seen.body.dimensions ?? 16 }))
      const unnamed = yield* make(`${server.url}/v1`, { model: undefined, apiKey: undefined })
      expect(unnamed.model).toBe("openai:fake-embed")
      expect(server.seen[0]!.body).toEqual({ input: ["dimension probe"], encoding_format: "float" })
      expect(server.seen[0]!.headers.authorization).toBeUndefined()
      const shortened = yield* make(server.url, { dimensions: 8 })
      expect(shortened.dimensions).toBe(8)
      expect(server.seen[1]!.body.dimensions).toBe(8)
    }).pipe(Effect.provide(FetchHttpClient.layer)))

  it.scoped("splits a call into batches by text count and by characters, and answers in input order", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer()
      const embedder = yield* make(server.url, { maxBatchTexts: 3, maxBatchChars: 30 })
      const texts = Array.from({ length: 7 }, (_, i) => `text number ${i}`) // 13 characters each: two fit in 30
      texts.push("a long text that is more than thirty characters on its own")
      const vectors = yield* embedder.embed(texts)
      expect(server.seen.slice(1).map((s) => s.body.input)).toEqual([texts.slice(0, 2), texts.slice(2, 4), texts.slice(4, 6), texts.slice(6, 7), texts.slice(7, 8)])
      vectors.forEach((v, i) => expect(cosine(v, featureHashingVector(texts[i]!, 16))).toBeCloseTo(1, 5))
      const small = yield* make(server.url, { maxBatchTexts: 3 })
      yield* small.embed(texts.slice(0, 7))
      expect(server.seen.slice(-3).map((s) => s.body.input.length)).toEqual([3, 3, 1])
    }).pipe(Effect.provide(FetchHttpClient.layer)))

  it.scoped("puts vectors in order by index when the server answers out of order", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer((seen) => answer(seen, { reversed: true }))
      const embedder = yield* make(server.url)
      const [a, b, c] = yield* embedder.embed(["alpha", "beta", "gamma"])
      expect(cosine(a!, featureHashingVector("alpha", 16))).toBeCloseTo(1, 5)
      expect(cosine(b!, featureHashingVector("beta", 16))).toBeCloseTo(1, 5)
      expect(cosine(c!, featureHashingVector("gamma", 16))).toBeCloseTo(1, 5)
    }).pipe(Effect.provide(FetchHttpClient.layer)))

  it.scoped("does not send empty texts: they embed as the zero vector", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer()
      const embedder = yield* make(server.url)
      const [empty, word] = yield* embedder.embed(["", "word"])
      expect(Array.from(empty!)).toEqual(new Array(16).fill(0))
      expect(cosine(word!, word!)).toBeCloseTo(1, 5)
      expect(server.seen.at(-1)!.body.input).toEqual(["word"])
    }).pipe(Effect.provide(FetchHttpClient.layer)))

  it.scoped("waits what Retry-After asks after a 429, then succeeds", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer((seen, n) =>
        n === 2 ? { status: 429, headers: { "retry-after": "2" }, body: { error: { message: "Rate limit reached" } } } : answer(seen)
      )
      const embedder = yield* make(server.url, { timeout: HOUR })
      const fiber = yield* Effect.fork(embedder.embed(["rate limited"]))
      expect(yield* pendingWait()).toBe(2000)
      yield* TestClock.adjust(2000)
      const [v] = yield* Fiber.join(fiber)
      expect(cosine(v!, featureHashingVector("rate limited", 16))).toBeCloseTo(1, 5)
      expect(server.seen).toHaveLength(3)
    }).pipe(Effect.provide(FetchHttpClient.layer)))

  it.scoped("retries a 500 with growing jittered waits and fails naming the status after the last attempt", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer((seen, n) => (n === 1 ? answer(seen) : { status: 500, body: { error: { message: "model overloaded" } } }))
      const embedder = yield* make(server.url, { timeout: HOUR, maxAttempts: 3, retryBaseDelay: "100 millis" })
      const fiber = yield* Effect.fork(Effect.either(embedder.embed(["busy"])))
      const first = yield* pendingWait()
      expect(first).toBeGreaterThanOrEqual(50)
      expect(first).toBeLessThanOrEqual(100)
      yield* TestClock.adjust(first)
      const second = yield* pendingWait()
      expect(second).toBeGreaterThanOrEqual(100)
      expect(second).toBeLessThanOrEqual(200)
      yield* TestClock.adjust(second)
      const result = yield* Fiber.join(fiber)
      expect(Either.isLeft(result)).toBe(true)
      const error = Either.getLeft(result).pipe((o) => (o._tag === "Some" ? o.value : undefined))!
      expect(error._tag).toBe("EmbedError")
      expect(error.status).toBe(500)
      expect(error.message).toContain("HTTP 500")
      expect(error.message).toContain("model overloaded")
      expect(error.message).toContain("gave up after 3 attempts")
      expect(server.seen).toHaveLength(1 + 3)
    }).pipe(Effect.provide(FetchHttpClient.layer)))

  it.scoped("does not retry a 401, names it, and keeps the key out of the error even when the server echoes it", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer((seen) => ({ status: 401, body: { error: { message: `Incorrect API key provided: ${seen.headers.authorization?.slice(7)}` } } }))
      const exit = yield* Effect.exit(make(server.url))
      expect(server.seen).toHaveLength(1)
      expect(server.seen[0]!.headers.authorization).toBe(`Bearer ${KEY}`)
      expect(Exit.isFailure(exit)).toBe(true)
      const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : undefined
      expect(error?._tag === "Some" && error.value._tag === "EmbedError" && error.value.status).toBe(401)
      const text = Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""
      expect(text).toContain("HTTP 401")
      expect(text).toContain("Incorrect API key provided")
      expect(text).not.toContain(KEY)
      expect(error?._tag === "Some" && JSON.stringify(error.value)).not.toContain(KEY)
    }).pipe(Effect.provide(FetchHttpClient.layer)))

  it.scoped("refuses a malformed body with a typed error, without retrying", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer((seen, n) =>
        n === 1 ? answer(seen) : n === 2 ? { body: { data: [{ index: 0, embedding: "not a vector" }] } } : { body: "<html>oops</html>" }
      )
      const embedder = yield* make(server.url)
      const shape = yield* Effect.flip(embedder.embed(["x"]))
      expect(shape._tag).toBe("EmbedError")
      expect(shape.message).toContain("not an embeddings response at data.0.embedding")
      const notJson = yield* Effect.flip(embedder.embed(["y"]))
      expect(notJson.message).toContain("not JSON")
      expect(server.seen).toHaveLength(3)
    }).pipe(Effect.provide(FetchHttpClient.layer)))

  it.scoped("refuses an answer with too few vectors or vectors of another length", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer((seen, n) => (n === 2 ? answer(seen, { drop: 1 }) : n === 3 ? answer(seen, { dimensions: 12 }) : answer(seen)))
      const embedder = yield* make(server.url)
      expect((yield* Effect.flip(embedder.embed(["a", "b"]))).message).toContain("asked for 2 embeddings, got 1")
      expect((yield* Effect.flip(embedder.embed(["c"]))).message).toContain("expected vectors of 16 dimensions, got one of 12")
      const configured = yield* Effect.flip(make(server.url, { dimensions: 8 }))
      expect(configured.message).toContain("expected vectors of 8 dimensions, got one of 16")
    }).pipe(Effect.provide(FetchHttpClient.layer)))

  it.scoped("gives a request that never answers its deadline, retries it once, then fails naming the deadline", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer((seen, n) => (n === 1 ? answer(seen) : "hang"))
      const embedder = yield* make(server.url, { timeout: "10 seconds", maxAttempts: 2 })
      const fiber = yield* Effect.fork(Effect.flip(embedder.embed(["silence"])))
      yield* Effect.promise(() => server.arrived(2))
      yield* TestClock.adjust("10 seconds")
      const wait = yield* pendingWait((yield* TestClock.currentTimeMillis) + 10_000)
      yield* TestClock.adjust(wait)
      yield* Effect.promise(() => server.arrived(3))
      yield* TestClock.adjust("10 seconds")
      const error = yield* Fiber.join(fiber)
      expect(error._tag).toBe("EmbedError")
      expect(error.status).toBeUndefined()
      expect(error.message).toContain("within 10s")
      expect(error.message).toContain("gave up after 2 attempts")
    }).pipe(Effect.provide(FetchHttpClient.layer)))

  it.scoped("fails with a typed error when nothing listens, and refuses bad options naming them", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer()
      const url = server.url
      yield* Effect.promise(server.close)
      const down = yield* Effect.flip(make(url, { maxAttempts: 1 }))
      expect(down._tag).toBe("EmbedError")
      expect(down.message).not.toContain(KEY)
      const bad = yield* Effect.flip(make(url, { maxBatchTexts: 0 }))
      expect(bad._tag === "InvalidConfig" && bad.field).toBe("maxBatchTexts")
      const noUrl = yield* Effect.flip(make("localhost"))
      expect(noUrl._tag === "InvalidConfig" && noUrl.field).toBe("url")
    }).pipe(Effect.provide(FetchHttpClient.layer)))

  it.scoped("opens a span per embed call and per request", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer()
      const names: Array<string> = []
      const base = yield* Effect.tracer
      const recording = Tracer.make({ span: (name, ...rest) => (names.push(name), base.span(name, ...rest)), context: base.context })
      const embedder = yield* make(server.url)
      yield* Effect.withTracer(embedder.embed(["traced"]), recording)
      expect(names).toContain("OpenAIEmbedder.embed")
      expect(names).toContain("OpenAIEmbedder.request")
    }).pipe(Effect.provide(FetchHttpClient.layer)))
})

describe("Embedder.layerFromEnv with PANTHEON_EMBED_URL", () => {
  /** The embedder built in the test's scope (its cache lives as long as the test). */
  const fromEnv = (env: Record<string, string>) =>
    Embedder.layerFromEnv.pipe(
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))),
      Layer.build,
      Effect.map(Context.get(Embedder))
    )

  it.scoped("chooses the OpenAI-compatible embedder, configured by the env, behind the cache", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer((seen) => answer(seen, { dimensions: seen.body.dimensions ?? 16 }))
      const embedder = yield* fromEnv({
          PANTHEON_EMBED_URL: server.url,
          PANTHEON_EMBED_MODEL: "env-model",
          PANTHEON_EMBED_API_KEY: KEY,
          PANTHEON_EMBED_DIMENSIONS: "8",
          PANTHEON_EMBED_BATCH: "2",
          PANTHEON_EMBED_TIMEOUT: "5000"
        })
      expect(embedder.model).toBe("openai:env-model")
      expect(embedder.dimensions).toBe(8)
      yield* embedder.embed(["one", "two", "three"])
      yield* embedder.embed(["one", "three"])
      const sent = server.seen.slice(1)
      expect(sent.map((s) => s.body.input)).toEqual([["one", "two"], ["three"]])
      expect(sent.every((s) => s.body.model === "env-model" && s.body.dimensions === 8 && s.headers.authorization === `Bearer ${KEY}`)).toBe(true)
      expect((yield* embedder.stats).hits).toBe(2)
    }))

  it.scoped("refuses PANTHEON_EMBED_URL together with PANTHEON_OLLAMA_URL, naming both", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(fromEnv({ PANTHEON_EMBED_URL: "http://127.0.0.1:1/v1", PANTHEON_OLLAMA_URL: "http://127.0.0.1:1" }))
      expect(error._tag).not.toBe("EmbedError")
      expect(String(error)).toContain("PANTHEON_EMBED_URL")
      expect(String(error)).toContain("PANTHEON_OLLAMA_URL")
    }))

  it.scoped("refuses bad values naming the variable", () =>
    Effect.gen(function* () {
      for (const [name, value] of [
        ["PANTHEON_EMBED_BATCH", "0"],
        ["PANTHEON_EMBED_TIMEOUT", "soon"],
        ["PANTHEON_EMBED_DIMENSIONS", "-3"]
      ] as const) {
        const error = yield* Effect.flip(fromEnv({ PANTHEON_EMBED_URL: "http://127.0.0.1:1", [name]: value }))
        expect(String(error)).toContain(name)
      }
      const url = yield* Effect.flip(fromEnv({ PANTHEON_EMBED_URL: "127.0.0.1:8000" }))
      expect(String(url)).toContain("PANTHEON_EMBED_URL")
    }))

  it.scoped("stays on feature hashing when no embedder URL is set", () =>
    Effect.gen(function* () {
      const embedder = yield* fromEnv({ PANTHEON_EMBED_DIMENSIONS: "64" })
      expect(embedder.model).toBe("feature-hashing-64")
    }))
})
