/**
 * The OpenAI embeddings API, `POST …/v1/embeddings`, which OpenAI, vLLM, llama.cpp's server,
 * LM Studio, LiteLLM and Ollama all serve. Texts go in batches (bounded in texts and characters),
 * one after another; each request has a deadline and is retried with jittered exponential back-off
 * on 429, 5xx, timeouts and network errors (a `Retry-After` is honoured); the answer is validated
 * (one vector per text, put in order by `index`, all of one length) and normalised to unit length.
 * The API key is `Redacted`: it goes into the `Authorization` header and nowhere else.
 */
// Subpaths, not the barrel: "@effect/platform" would load every module of the package (and fast-check).
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Clock, Data, Duration, Effect, Either, ParseResult, Random, Redacted, Schema } from "effect"
import { EmbedError, errorReason, InvalidConfig } from "../domain/errors.js"
import type { EmbedderShape } from "./Embedder.js"
import { normalize } from "./vector.js"

export interface OpenAIEmbedderConfig {
  /**
   * The server. A URL with no path gets `/v1` (`http://127.0.0.1:8000` → `…/v1/embeddings`); one with a
   * path is the API's base (`https://api.openai.com/v1`, `https://host/openai/v1`), to which
   * `/embeddings` is added; one that already ends in `/embeddings` is used as it is.
   */
  readonly url: string
  /**
   * The model asked for, e.g. `text-embedding-3-small`. Unset: no `model` is sent (llama.cpp's server
   * and a single-model vLLM need none) and the embedder is named after the model the server reports.
   */
  readonly model?: string
  /** Sent as `Authorization: Bearer …`; never logged, never in an error. Unset or empty: no header (local servers). */
  readonly apiKey?: Redacted.Redacted | string
  /**
   * Sent as `dimensions` (OpenAI's text-embedding-3 models shorten their vectors to it; servers whose
   * model cannot refuse it). Unset: not sent, the model's own length is read from the probe.
   */
  readonly dimensions?: number
  /** Most texts in one request; default 96. More: fewer round trips; OpenAI accepts up to 2,048, small local servers fewer. */
  readonly maxBatchTexts?: number
  /**
   * Most characters (UTF-16 code units) in one request; default 100,000 (about 25,000 tokens of English,
   * well under OpenAI's 300,000 tokens a request). A single longer text is sent alone.
   */
  readonly maxBatchChars?: number
  /** Deadline of one request (each attempt has its own); default 30 s. A request that misses it is retried. */
  readonly timeout?: Duration.DurationInput
  /** Attempts of one request, the first included; default 4. 1: never retry. */
  readonly maxAttempts?: number
  /** The wait before the first retry, doubled for each next one, then jittered to 50-100 % of itself; default 500 ms. */
  readonly retryBaseDelay?: Duration.DurationInput
  /** Longest wait between two attempts; default 30 s. A `Retry-After` asking for longer ends the retries at once. */
  readonly maxRetryDelay?: Duration.DurationInput
}

export const DEFAULT_MAX_BATCH_TEXTS = 96
export const DEFAULT_MAX_BATCH_CHARS = 100_000

/** The embeddings endpoint of a base URL (the rule is on `OpenAIEmbedderConfig.url`). */
export const embeddingsUrl = (base: string): string => {
  const url = new URL(base.trim())
  const path = url.pathname.replace(/\/+$/, "")
  url.pathname = path.endsWith("/embeddings") ? path : `${path === "" ? "/v1" : path}/embeddings`
  return url.toString()
}

/** Consecutive runs of `texts` (as `[start, end)`) within both bounds; a text over `maxChars` is a run of its own. */
export const batches = (texts: ReadonlyArray<string>, maxTexts: number, maxChars: number): Array<readonly [number, number]> => {
  const runs: Array<readonly [number, number]> = []
  let start = 0
  let chars = 0
  for (let i = 0; i < texts.length; i++) {
    const length = texts[i]!.length
    if (i > start && (i - start >= maxTexts || chars + length > maxChars)) {
      runs.push([start, i])
      start = i
      chars = 0
    }
    chars += length
  }
  if (start < texts.length) runs.push([start, texts.length])
  return runs
}

/** The wait before retry number `attempt` (1 = the first retry): doubling from `base`, at most `cap`, scaled by `0.5 + random / 2`. */
export const backoffMillis = (attempt: number, baseMillis: number, capMillis: number, random: number): number =>
  Math.min(capMillis, baseMillis * 2 ** (attempt - 1)) * (0.5 + random / 2)

/** The wait a 429/503 asks for: `retry-after-ms` (OpenAI's), else `Retry-After` in seconds or as an HTTP date. */
export const retryAfterMillis = (headers: Readonly<Record<string, string | undefined>>, nowMillis: number): number | undefined => {
  const ms = Number(headers["retry-after-ms"])
  if (headers["retry-after-ms"] !== undefined && Number.isFinite(ms) && ms >= 0) return ms
  const value = headers["retry-after"]?.trim()
  if (value === undefined || value === "") return undefined
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMillis)
}

/** The message in an error body: OpenAI's `{ error: { message } }`, vLLM's `{ message }`, FastAPI's `{ detail }`, else the text. */
export const serverMessage = (body: string): string => {
  let message: unknown = body
  try {
    const json: unknown = JSON.parse(body)
    if (json !== null && typeof json === "object") {
      const o = json as Record<string, unknown>
      const error = o.error
      message =
        error !== null && typeof error === "object" && typeof (error as Record<string, unknown>).message === "string"
          ? (error as Record<string, unknown>).message
          : typeof error === "string"
            ? error
            : typeof o.message === "string"
              ? o.message
              : typeof o.detail === "string"
                ? o.detail
                : body
    }
  } catch {
    // not JSON: the text itself
  }
  const text = String(message).replace(/\s+/g, " ").trim()
  return text.length > 300 ? `${text.slice(0, 297)}...` : text
}

const EmbeddingsResponse = Schema.Struct({
  model: Schema.optional(Schema.String),
  data: Schema.Array(Schema.Struct({ index: Schema.Int, embedding: Schema.Array(Schema.Number) }))
})
type EmbeddingsResponse = typeof EmbeddingsResponse.Type

/** The vectors of an answer in input order, or why the answer does not fit a request of `count` texts. */
export const orderedVectors = (data: EmbeddingsResponse["data"], count: number): Either.Either<Array<ReadonlyArray<number>>, string> => {
  if (data.length !== count) return Either.left(`asked for ${count} embeddings, got ${data.length}`)
  const vectors: Array<ReadonlyArray<number> | undefined> = new Array(count)
  for (const { embedding, index } of data) {
    if (index < 0 || index >= count) return Either.left(`an embedding has index ${index}, outside 0-${count - 1}`)
    if (vectors[index] !== undefined) return Either.left(`two embeddings have index ${index}`)
    vectors[index] = embedding
  }
  return Either.right(vectors as Array<ReadonlyArray<number>>)
}

/** One attempt that failed: whether another may succeed, and how long the server asked us to wait. */
class AttemptFailed extends Data.TaggedError("AttemptFailed")<{
  readonly reason: string
  readonly retryable: boolean
  readonly status?: number
  readonly retryAfterMillis?: number
  readonly cause?: unknown
}> {}

const positiveInteger = (field: string, value: number | undefined, fallback: number) =>
  value === undefined
    ? Effect.succeed(fallback)
    : Number.isSafeInteger(value) && value > 0
      ? Effect.succeed(value)
      : Effect.fail(new InvalidConfig({ field, value, reason: "must be a positive integer" }))

const positiveDuration = (field: string, value: Duration.DurationInput | undefined, fallback: Duration.Duration) => {
  if (value === undefined) return Effect.succeed(fallback)
  const decoded = Duration.decodeUnknown(value)
  return decoded._tag === "Some" && Duration.toMillis(decoded.value) > 0
    ? Effect.succeed(decoded.value)
    : Effect.fail(new InvalidConfig({ field, value, reason: "must be a positive duration" }))
}

/**
 * The embedder. Building it sends one probe text, which must succeed: it checks the URL, key and model
 * at start-up and learns the dimensions (and the model's name when none was configured).
 */
export const openai = (config: OpenAIEmbedderConfig) =>
  Effect.gen(function* () {
    const endpoint = yield* Effect.try({
      try: () => embeddingsUrl(config.url),
      catch: () => new InvalidConfig({ field: "url", value: config.url, reason: "is not a URL" })
    })
    if (!/^https?:$/.test(new URL(endpoint).protocol)) return yield* new InvalidConfig({ field: "url", value: config.url, reason: "must be an http or https URL" })
    if (new URL(endpoint).username !== "" || new URL(endpoint).password !== "")
      return yield* new InvalidConfig({ field: "url", value: "(a URL with credentials)", reason: "must not hold credentials: pass the key as apiKey" })
    const maxBatchTexts = yield* positiveInteger("maxBatchTexts", config.maxBatchTexts, DEFAULT_MAX_BATCH_TEXTS)
    const maxBatchChars = yield* positiveInteger("maxBatchChars", config.maxBatchChars, DEFAULT_MAX_BATCH_CHARS)
    const maxAttempts = yield* positiveInteger("maxAttempts", config.maxAttempts, 4)
    const wantedDimensions = config.dimensions === undefined ? undefined : yield* positiveInteger("dimensions", config.dimensions, 0)
    const timeout = yield* positiveDuration("timeout", config.timeout, Duration.seconds(30))
    const baseDelay = Duration.toMillis(yield* positiveDuration("retryBaseDelay", config.retryBaseDelay, Duration.millis(500)))
    const maxDelay = Duration.toMillis(yield* positiveDuration("maxRetryDelay", config.maxRetryDelay, Duration.seconds(30)))
    const key = typeof config.apiKey === "string" ? Redacted.make(config.apiKey) : config.apiKey
    const hasKey = key !== undefined && Redacted.value(key) !== ""
    // A server may echo what it was sent; the key never leaves this module inside a message.
    const scrub = (text: string) => (hasKey ? text.split(Redacted.value(key)).join("<redacted>") : text)
    const http = yield* HttpClient.HttpClient
    let model = `openai:${config.model ?? "(server default)"}`
    let dimensions = wantedDimensions
    let calls = 0
    let embedded = 0

    const failStatus = (response: HttpClientResponse.HttpClientResponse) =>
      Effect.flatMap(Effect.zip(Effect.orElseSucceed(response.text, () => ""), Clock.currentTimeMillis), ([body, now]) => {
        const retryAfter = retryAfterMillis(response.headers, now)
        const message = scrub(serverMessage(body))
        return Effect.fail(
          new AttemptFailed({
            reason: `HTTP ${response.status} from ${endpoint}${message === "" ? "" : `: ${message}`}`,
            status: response.status,
            retryable: response.status === 429 || response.status >= 500,
            ...(retryAfter === undefined ? {} : { retryAfterMillis: retryAfter })
          })
        )
      })

    const readVectors = (response: HttpClientResponse.HttpClientResponse, count: number) =>
      response.json.pipe(
        Effect.mapError((cause) => new AttemptFailed({ reason: `the answer is not JSON: ${scrub(errorReason(cause))}`, retryable: false, cause: cause.cause })),
        Effect.flatMap((json) =>
          Schema.decodeUnknown(EmbeddingsResponse)(json).pipe(
            Effect.mapError((error) => {
              const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
              const where = issue === undefined || issue.path.length === 0 ? "" : ` at ${issue.path.join(".")}`
              return new AttemptFailed({ reason: `the answer is not an embeddings response${where}: ${scrub(serverMessage(issue?.message ?? ""))}`, retryable: false })
            })
          )
        ),
        Effect.flatMap((answer) =>
          Either.match(orderedVectors(answer.data, count), {
            onLeft: (reason) => Effect.fail(new AttemptFailed({ reason, retryable: false })),
            onRight: (vectors) => Effect.succeed({ model: answer.model, vectors })
          })
        )
      )

    const attemptOnce = (request: HttpClientRequest.HttpClientRequest, texts: ReadonlyArray<string>, attempt: number) =>
      Effect.suspend(() => {
        calls++
        embedded += texts.length
        return http.execute(request)
      }).pipe(
        Effect.mapError((e: HttpClientError.HttpClientError) =>
          new AttemptFailed({ reason: scrub(errorReason(e)), retryable: e._tag === "RequestError" && e.reason === "Transport", cause: e.cause })
        ),
        Effect.flatMap((response) => (response.status >= 200 && response.status < 300 ? readVectors(response, texts.length) : failStatus(response))),
        Effect.scoped,
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => new AttemptFailed({ reason: `no answer from ${endpoint} within ${Duration.format(timeout)}`, retryable: true })
        }),
        Effect.withSpan("OpenAIEmbedder.request", { attributes: { model, texts: texts.length, attempt }, captureStackTrace: false })
      )

    /** One batch, retried while it may still succeed; the last failure becomes the `EmbedError`. */
    const request = (texts: ReadonlyArray<string>) => {
      const body = {
        ...(config.model === undefined ? {} : { model: config.model }),
        input: texts,
        ...(wantedDimensions === undefined ? {} : { dimensions: wantedDimensions }),
        encoding_format: "float"
      }
      const built = HttpClientRequest.post(endpoint).pipe(HttpClientRequest.acceptJson, HttpClientRequest.bodyUnsafeJson(body))
      const httpRequest = hasKey ? HttpClientRequest.bearerToken(built, key) : built
      const giveUp = (failure: AttemptFailed, attempts: number, why = "") =>
        new EmbedError({
          model,
          reason: `${failure.reason}${attempts > 1 ? ` (gave up after ${attempts} attempts)` : ""}${why}`,
          ...(failure.status === undefined ? {} : { status: failure.status }),
          ...(failure.cause === undefined ? {} : { cause: failure.cause })
        })
      const loop = (attempt: number): Effect.Effect<{ model: string | undefined; vectors: Array<ReadonlyArray<number>> }, EmbedError> =>
        Effect.catchAll(attemptOnce(httpRequest, texts, attempt), (failure) => {
          if (!failure.retryable || attempt >= maxAttempts) return Effect.fail(giveUp(failure, attempt))
          if (failure.retryAfterMillis !== undefined && failure.retryAfterMillis > maxDelay)
            return Effect.fail(giveUp(failure, attempt, ` (the server asked to wait ${Duration.format(Duration.millis(failure.retryAfterMillis))}, more than maxRetryDelay)`))
          const wait =
            failure.retryAfterMillis !== undefined
              ? Effect.succeed(failure.retryAfterMillis)
              : Effect.map(Random.next, (r) => backoffMillis(attempt, baseDelay, maxDelay, r))
          return Effect.flatMap(wait, (ms) => Effect.zipRight(Effect.sleep(Duration.millis(ms)), loop(attempt + 1)))
        })
      return loop(1)
    }

    /** A batch's unit vectors, all of the embedder's dimensions (the first answer sets them when none were configured). */
    const embedBatch = (texts: ReadonlyArray<string>) =>
      Effect.flatMap(request(texts), (answer) => {
        const expected = dimensions ?? answer.vectors[0]!.length
        if (expected === 0) return Effect.fail(new EmbedError({ model, reason: "the server answered with empty vectors" }))
        const wrong = answer.vectors.find((v) => v.length !== expected)
        if (wrong !== undefined) return Effect.fail(new EmbedError({ model, reason: `expected vectors of ${expected} dimensions, got one of ${wrong.length}` }))
        return Effect.succeed({ model: answer.model, vectors: answer.vectors.map((v) => normalize(Float32Array.from(v))) })
      })

    const probe = yield* embedBatch(["dimension probe"])
    dimensions = probe.vectors[0]!.length
    model = `openai:${config.model ?? probe.model ?? "(server default)"}`
    const size = dimensions

    // Empty texts are not sent (OpenAI refuses them): they embed as the zero vector, which matches nothing.
    const embed = (texts: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<Float32Array>, EmbedError> => {
      const sent = texts.flatMap((text, i) => (text === "" ? [] : [i]))
      const sentTexts = sent.map((i) => texts[i]!)
      const runs = batches(sentTexts, maxBatchTexts, maxBatchChars)
      return Effect.forEach(runs, ([start, end]) => embedBatch(sentTexts.slice(start, end))).pipe(
        Effect.map((answers) => {
          const out: Array<Float32Array> = texts.map(() => new Float32Array(size))
          let k = 0
          for (const answer of answers) for (const v of answer.vectors) out[sent[k++]!] = v
          return out
        }),
        Effect.withSpan("OpenAIEmbedder.embed", { attributes: { model, texts: texts.length, batches: runs.length }, captureStackTrace: false })
      )
    }
    return { model, dimensions: size, embed, stats: Effect.sync(() => ({ hits: 0, misses: 0, entries: 0, bytes: 0, calls, embedded })) } satisfies EmbedderShape
  })
