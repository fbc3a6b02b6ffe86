/**
 * Embedder: texts → unit vectors. Feature hashing by default (`hashing.ts`: no model, no download),
 * Ollama (`ollama.ts`) or any OpenAI-compatible `/v1/embeddings` server (`openai.ts`) when
 * configured; every layer puts the byte-bounded cache (`cached.ts`) in front, so each text is
 * embedded once however many callers ask for it. The HTTP embedders and their client
 * (`@effect/platform`'s) are loaded when their layer is built, not when the package is imported.
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import { Context, Duration, Effect, Layer, Option, Redacted } from "effect"
import { envInteger, envText, envValue, isUrl } from "../domain/config.js"
import { InvalidConfig } from "../domain/errors.js"
import type { EmbedError } from "../domain/errors.js"
import { cached, DEFAULT_CACHE_BYTES } from "./cached.js"
import { featureHashing } from "./hashing.js"
import type { OllamaConfig } from "./ollama.js"
import type { OpenAIEmbedderConfig } from "./openai.js"

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

/** A variable that may be unset (empty counts as unset), as an `Option`; a set one must pass `parse`. */
const optionalEnv = <A>(env: string, field: string, parse: (text: string) => A | undefined, reason: string) =>
  Effect.flatMap(envValue(env), (value) => {
    if (Option.isNone(value)) return Effect.succeed(Option.none<A>())
    const parsed = parse(value.value.trim())
    return parsed === undefined ? Effect.fail(new InvalidConfig({ field, env, value: value.value, reason })) : Effect.succeed(Option.some(parsed))
  })

const positiveInteger = (text: string) => (/^\d+$/.test(text) && Number(text) > 0 ? Number(text) : undefined)

/** Milliseconds or a duration string ("30 seconds"), as the other `PANTHEON_*` durations. */
const positiveDuration = (text: string) => {
  const decoded = /^\d+$/.test(text) ? Option.some(Duration.millis(Number(text))) : Duration.decodeUnknown(text)
  return Option.isSome(decoded) && Duration.toMillis(decoded.value) > 0 ? decoded.value : undefined
}

/**
 * The embedder from the environment: an OpenAI-compatible server when `PANTHEON_EMBED_URL` is set,
 * Ollama when `PANTHEON_OLLAMA_URL` is, else feature hashing. Both set is refused (which one was
 * meant?). A bad value is an `InvalidConfig` naming the variable.
 */
export const EmbedderConfig = Effect.all({
  ollamaUrl: Effect.map(
    envText("PANTHEON_OLLAMA_URL", "url", { fallback: "", valid: (url) => isUrl(url, ["http:", "https:"]), reason: "must be an http:// or https:// URL" }),
    (url) => (url === "" ? Option.none() : Option.some(url))
  ),
  ollamaModel: envText("PANTHEON_OLLAMA_MODEL", "model", { fallback: "nomic-embed-text" }),
  embedUrl: optionalEnv("PANTHEON_EMBED_URL", "url", (url) => (isUrl(url, ["http:", "https:"]) ? url : undefined), "must be an http:// or https:// URL"),
  /** Feature hashing's dimensions (default 256); for an OpenAI-compatible server, the `dimensions` asked for (unset: the model's). */
  dimensions: optionalEnv("PANTHEON_EMBED_DIMENSIONS", "dimensions", positiveInteger, "must be a whole number of at least 1"),
  cacheBytes: envInteger("PANTHEON_EMBED_CACHE_BYTES", "cacheBytes", DEFAULT_CACHE_BYTES, 0)
}).pipe(
  Effect.filterOrFail(
    (c) => !(Option.isSome(c.embedUrl) && Option.isSome(c.ollamaUrl)),
    (c) =>
      new InvalidConfig({
        field: "url",
        env: "PANTHEON_EMBED_URL",
        value: Option.getOrUndefined(c.embedUrl),
        reason: "is set together with PANTHEON_OLLAMA_URL: set one (Ollama also serves the OpenAI API: PANTHEON_EMBED_URL=<ollama url>/v1)"
      })
  )
)

/** What only the OpenAI-compatible embedder reads (when `PANTHEON_EMBED_URL` is set). */
export const OpenAIEmbedderEnvConfig = Effect.all({
  model: optionalEnv("PANTHEON_EMBED_MODEL", "model", (m) => m, "is invalid"),
  apiKey: Effect.map(envValue("PANTHEON_EMBED_API_KEY"), Option.map((key) => Redacted.make(key.trim()))),
  maxBatchTexts: optionalEnv("PANTHEON_EMBED_BATCH", "maxBatchTexts", positiveInteger, "must be a whole number of at least 1"),
  timeout: optionalEnv("PANTHEON_EMBED_TIMEOUT", "timeout", positiveDuration, 'must be a positive duration in milliseconds or a string such as "30 seconds"')
})

/** `@effect/platform`'s fetch client, loaded when a layer that needs it is built. */
const fetchHttpClient: Layer.Layer<HttpClient.HttpClient> = Layer.unwrapEffect(
  Effect.map(
    Effect.promise(() => import("@effect/platform/FetchHttpClient")),
    (m) => m.layer
  )
)

export class Embedder extends Context.Tag("pantheon-persistence/Embedder")<Embedder, EmbedderShape>() {
  /** Feature hashing behind the cache: the default, needs nothing. */
  static readonly layerFeatureHashing = (options: { readonly dimensions?: number; readonly cacheBytes?: number } = {}): Layer.Layer<Embedder> =>
    Layer.scoped(Embedder, cached(featureHashing(options.dimensions ?? 256), options.cacheBytes))

  /**
   * An OpenAI-compatible `/v1/embeddings` server (OpenAI, vLLM, llama.cpp, LM Studio, LiteLLM, Ollama)
   * behind the cache. Fails to build if the server cannot embed a probe text.
   */
  static readonly layerOpenAI = (
    options: OpenAIEmbedderConfig & { readonly cacheBytes?: number }
  ): Layer.Layer<Embedder, EmbedError | InvalidConfig, HttpClient.HttpClient> =>
    Layer.scoped(
      Embedder,
      Effect.promise(() => import("./openai.js")).pipe(
        Effect.flatMap(({ openai }) => openai(options)),
        Effect.flatMap((e) => cached(e, options.cacheBytes))
      )
    )

  /** Ollama behind the cache. Fails to build if the server cannot embed a probe text. */
  static readonly layerOllama = (
    options: OllamaConfig & { readonly cacheBytes?: number } = {}
  ): Layer.Layer<Embedder, EmbedError, HttpClient.HttpClient> =>
    Layer.scoped(
      Embedder,
      Effect.promise(() => import("./ollama.js")).pipe(
        Effect.flatMap(({ ollama }) => ollama(options)),
        Effect.flatMap((e) => cached(e, options.cacheBytes))
      )
    )

  /**
   * From the environment (`EmbedderConfig`): an OpenAI-compatible server when `PANTHEON_EMBED_URL` is
   * set, Ollama when `PANTHEON_OLLAMA_URL` is, else feature hashing; all cached.
   */
  static readonly layerFromEnv: Layer.Layer<Embedder, EmbedError | InvalidConfig> = Layer.unwrapEffect(
    Effect.flatMap(EmbedderConfig, (c) =>
      Option.match(c.embedUrl, {
        onSome: (url) =>
          Effect.map(OpenAIEmbedderEnvConfig, (o) =>
            Embedder.layerOpenAI({
              url,
              model: Option.getOrUndefined(o.model),
              apiKey: Option.getOrUndefined(o.apiKey),
              dimensions: Option.getOrUndefined(c.dimensions),
              maxBatchTexts: Option.getOrUndefined(o.maxBatchTexts),
              timeout: Option.getOrUndefined(o.timeout),
              cacheBytes: c.cacheBytes
            }).pipe(Layer.provide(fetchHttpClient))
          ),
        onNone: () =>
          Effect.succeed(
            Option.isSome(c.ollamaUrl)
              ? Embedder.layerOllama({ url: c.ollamaUrl.value, model: c.ollamaModel, cacheBytes: c.cacheBytes }).pipe(Layer.provide(fetchHttpClient))
              : Embedder.layerFeatureHashing({ dimensions: Option.getOrElse(c.dimensions, () => 256), cacheBytes: c.cacheBytes })
          )
      })
    )
  )
}
