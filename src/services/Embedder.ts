/**
 * Embedder: texts → unit vectors. Two implementations and a cache in front of either:
 * - `featureHashing`: no model and no download. Lower-cased words and word bigrams are hashed
 *   (with a sign hash) into a fixed number of dimensions and L2-normalised, so cosine similarity
 *   measures shared words and phrases. Deterministic: the same text always gets the same vector.
 * - `ollama`: an Ollama server's `/api/embed` (model and URL from config), for semantic vectors.
 * - the cache (`cached`), bounded in bytes, keeps each text's vector once and runs one embedding
 *   call per text however many callers ask at once; hits and misses are metrics.
 */
import { FetchHttpClient, HttpClient, HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { Config, type ConfigError, Context, Deferred, Duration, Effect, Exit, FiberId, Layer, Schema } from "effect"
import { EmbedError } from "../domain/errors.js"
import * as M from "../metrics.js"

export interface EmbedderStats {
  readonly hits: number
  readonly misses: number
  readonly entries: number
  readonly bytes: number
  /** Calls made to the model (each embeds a batch of texts). */
  readonly calls: number
  /** Texts sent to the model. */
  readonly embedded: number
}

export interface EmbedderShape {
  /** Names the model and its dimensions, e.g. `feature-hashing-256`, `ollama:nomic-embed-text`. */
  readonly model: string
  readonly dimensions: number
  readonly embed: (texts: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Float32Array>, EmbedError>
  readonly stats: Effect.Effect<EmbedderStats>
}

export class Embedder extends Context.Tag("pantheon-persistence/Embedder")<Embedder, EmbedderShape>() {}

/** Scales `v` to unit length in place (a zero vector stays zero). */
const normalize = (v: Float32Array) => {
  let norm = 0
  for (let i = 0; i < v.length; i++) norm += v[i]! * v[i]!
  if (norm > 0) {
    const scale = 1 / Math.sqrt(norm)
    for (let i = 0; i < v.length; i++) v[i]! *= scale
  }
  return v
}

// ---------------------------------------------------------------------------------------------
// Feature hashing

const fnv1a = (text: string, seed: number) => {
  let h = seed
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

export const tokenize = (text: string): Array<string> => text.toLowerCase().normalize("NFKC").match(/[\p{L}\p{N}]+/gu) ?? []

/** The vector of one text: words and word bigrams hashed into `dimensions` signed buckets, unit length. */
export const featureHashingVector = (text: string, dimensions: number): Float32Array => {
  const v = new Float32Array(dimensions)
  const words = tokenize(text)
  const add = (feature: string, weight: number) => {
    const h = fnv1a(feature, 0x811c9dc5)
    const sign = fnv1a(feature, 0x9747b28c) & 1 ? 1 : -1
    v[h % dimensions]! += sign * weight
  }
  for (let i = 0; i < words.length; i++) {
    add(words[i]!, 1)
    if (i > 0) add(`${words[i - 1]} ${words[i]}`, 0.5)
  }
  return normalize(v)
}

export const featureHashing = (dimensions = 256): EmbedderShape => {
  let calls = 0
  let embedded = 0
  return {
    model: `feature-hashing-${dimensions}`,
    dimensions,
    embed: (texts) =>
      Effect.sync(() => {
        calls++
        embedded += texts.length
        return texts.map((t) => featureHashingVector(t, dimensions))
      }),
    stats: Effect.sync(() => ({ hits: 0, misses: 0, entries: 0, bytes: 0, calls, embedded }))
  }
}

// ---------------------------------------------------------------------------------------------
// Ollama

export interface OllamaConfig {
  /** Base URL of the Ollama server (default http://127.0.0.1:11434). */
  readonly url?: string
  /** The embedding model (default nomic-embed-text). */
  readonly model?: string
  /** Longest one call may take (default 30 s). */
  readonly timeout?: Duration.DurationInput
}

const EmbedResponse = Schema.Struct({ embeddings: Schema.Array(Schema.Array(Schema.Number)) })

/** Ollama's `/api/embed`. The dimensions are read from the server's answer to a first probe. */
export const ollama = (config: OllamaConfig = {}) =>
  Effect.gen(function* () {
    const url = (config.url ?? "http://127.0.0.1:11434").replace(/\/+$/, "")
    const modelName = config.model ?? "nomic-embed-text"
    const model = `ollama:${modelName}`
    const http = (yield* HttpClient.HttpClient).pipe(HttpClient.filterStatusOk)
    let calls = 0
    let embedded = 0
    const call = (texts: ReadonlyArray<string>) =>
      HttpClientRequest.post(`${url}/api/embed`).pipe(
        HttpClientRequest.bodyJson({ model: modelName, input: texts }),
        Effect.flatMap((request) => {
          calls++
          embedded += texts.length
          return http.execute(request)
        }),
        Effect.flatMap(HttpClientResponse.schemaBodyJson(EmbedResponse)),
        Effect.scoped,
        Effect.timeout(config.timeout ?? Duration.seconds(30)),
        Effect.mapError((cause) =>
          new EmbedError({ model, reason: cause._tag === "TimeoutException" ? "timed out" : "message" in cause ? String(cause.message) : cause._tag, cause })
        ),
        Effect.flatMap(({ embeddings }) =>
          embeddings.length === texts.length
            ? Effect.succeed(embeddings.map((e) => normalize(Float32Array.from(e))))
            : Effect.fail(new EmbedError({ model, reason: `asked for ${texts.length} embeddings, got ${embeddings.length}` }))
        )
      )
    const [probe] = yield* call(["dimension probe"])
    const dimensions = probe!.length
    const embed = (texts: ReadonlyArray<string>) =>
      texts.length === 0
        ? Effect.succeed([])
        : Effect.flatMap(call(texts), (vectors) =>
            vectors.every((v) => v.length === dimensions)
              ? Effect.succeed(vectors)
              : Effect.fail(new EmbedError({ model, reason: `the model changed dimensions (expected ${dimensions})` }))
          )
    return { model, dimensions, embed, stats: Effect.sync(() => ({ hits: 0, misses: 0, entries: 0, bytes: 0, calls, embedded })) } satisfies EmbedderShape
  })

// ---------------------------------------------------------------------------------------------
// The cache

/** What one cached vector costs: its floats, its text (UTF-16) and the bookkeeping around them. */
const entryBytes = (text: string, v: Float32Array) => v.byteLength + text.length * 2 + 96

/**
 * Puts a byte-bounded LRU cache with single-flight in front of `embedder`. A batch asks the model
 * once for the texts that are neither cached nor being embedded by another caller.
 */
export const cached = (embedder: EmbedderShape, maxBytes = 32 * 1024 * 1024) =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const entries = new Map<string, Float32Array>()
    const flights = new Map<string, Deferred.Deferred<Float32Array, EmbedError>>()
    let bytes = 0
    let hits = 0
    let misses = 0

    const remember = (text: string, v: Float32Array) => {
      const cost = entryBytes(text, v)
      if (cost > maxBytes) return
      const old = entries.get(text)
      if (old) {
        bytes -= entryBytes(text, old)
        entries.delete(text)
      }
      entries.set(text, v)
      bytes += cost
      for (const [oldest, vector] of entries) {
        if (bytes <= maxBytes) break
        entries.delete(oldest)
        bytes -= entryBytes(oldest, vector)
      }
    }

    const embed = (texts: ReadonlyArray<string>) =>
      Effect.suspend(() => {
        const waits: Array<Deferred.Deferred<Float32Array, EmbedError>> = []
        const out: Array<Float32Array | undefined> = new Array(texts.length)
        const missing: Array<string> = []
        let hit = 0
        texts.forEach((text, i) => {
          const v = entries.get(text)
          if (v) {
            entries.delete(text)
            entries.set(text, v)
            out[i] = v
            hit++
            return
          }
          let flight = flights.get(text)
          if (!flight) {
            flight = Deferred.unsafeMake<Float32Array, EmbedError>(FiberId.none)
            flights.set(text, flight)
            missing.push(text)
          }
          waits[i] = flight
        })
        hits += hit
        misses += texts.length - hit
        M.embedCacheHits.unsafeUpdate(hit, [])
        M.embedCacheMisses.unsafeUpdate(texts.length - hit, [])
        if (hit === texts.length) return Effect.succeed(out as Array<Float32Array>)
        // The model call runs in the cache's scope: an interrupted caller does not fail the others.
        const start =
          missing.length === 0
            ? Effect.void
            : Effect.forkIn(
                Effect.interruptible(embedder.embed(missing)).pipe(
                  Effect.exit,
                  Effect.flatMap((exit) =>
                    Effect.forEach(
                      missing,
                      (text, j) => {
                        const flight = flights.get(text)!
                        flights.delete(text)
                        if (Exit.isSuccess(exit)) {
                          remember(text, exit.value[j]!)
                          return Deferred.succeed(flight, exit.value[j]!)
                        }
                        return Deferred.failCause(flight, exit.cause)
                      },
                      { discard: true }
                    )
                  )
                ),
                scope
              )
        return Effect.zipRight(
          Effect.uninterruptible(start),
          Effect.forEach(texts, (_, i) => (out[i] ? Effect.succeed(out[i]!) : Deferred.await(waits[i]!)))
        )
      }).pipe(Effect.withSpan("Embedder.embed", { attributes: { model: embedder.model, texts: texts.length } }))

    const stats = Effect.flatMap(embedder.stats, (inner) =>
      Effect.sync((): EmbedderStats => ({ hits, misses, entries: entries.size, bytes, calls: inner.calls, embedded: inner.embedded }))
    )
    return { model: embedder.model, dimensions: embedder.dimensions, embed, stats } satisfies EmbedderShape
  })

/** The embedder from the environment: Ollama when `PANTHEON_OLLAMA_URL` is set, else feature hashing. */
export const EmbedderConfig = Config.all({
  ollamaUrl: Config.option(Config.string("PANTHEON_OLLAMA_URL")),
  ollamaModel: Config.string("PANTHEON_OLLAMA_MODEL").pipe(Config.withDefault("nomic-embed-text")),
  dimensions: Config.integer("PANTHEON_EMBED_DIMENSIONS").pipe(Config.withDefault(256)),
  cacheBytes: Config.integer("PANTHEON_EMBED_CACHE_BYTES").pipe(Config.withDefault(32 * 1024 * 1024))
})

/** Feature hashing behind the cache: the default, needs nothing. */
export const layerFeatureHashing = (options: { dimensions?: number; cacheBytes?: number } = {}): Layer.Layer<Embedder> =>
  Layer.scoped(Embedder, cached(featureHashing(options.dimensions ?? 256), options.cacheBytes))

/** Ollama behind the cache. Fails to build if the server cannot embed a probe text. */
export const layerOllama = (options: OllamaConfig & { cacheBytes?: number } = {}): Layer.Layer<Embedder, EmbedError, HttpClient.HttpClient> =>
  Layer.scoped(Embedder, Effect.flatMap(ollama(options), (e) => cached(e, options.cacheBytes)))

/** From the environment: Ollama when `PANTHEON_OLLAMA_URL` is set, else feature hashing; both cached. */
export const layerFromEnv: Layer.Layer<Embedder, EmbedError | ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(EmbedderConfig, (c) =>
    c.ollamaUrl._tag === "Some"
      ? layerOllama({ url: c.ollamaUrl.value, model: c.ollamaModel, cacheBytes: c.cacheBytes }).pipe(Layer.provide(FetchHttpClient.layer))
      : layerFeatureHashing({ dimensions: c.dimensions, cacheBytes: c.cacheBytes })
  )
)
