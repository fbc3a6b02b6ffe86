/**
 * Embedder: texts → unit vectors. Feature hashing by default (`hashing.ts`: no model, no download),
 * Ollama (`ollama.ts`) or any OpenAI-compatible `/v1/embeddings` server (`openai.ts`) when
 * configured; every layer puts the byte-bounded cache (`cached.ts`) in front, so each text is
 * embedded once however many callers ask for it.
 */
import { FetchHttpClient, type HttpClient } from "@effect/platform"
import { Config, ConfigError, Context, Duration, Effect, Either, Layer, Option } from "effect"
import type { EmbedError, InvalidConfig } from "../domain/errors.js"
import { cached, DEFAULT_CACHE_BYTES } from "./cached.js"
import { featureHashing } from "./hashing.js"
import { ollama, type OllamaConfig } from "./ollama.js"
import { openai, type OpenAIEmbedderConfig } from "./openai.js"

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

const positiveInteger = (name: string) =>
  Config.integer(name).pipe(Config.validate({ message: "must be a positive integer", validation: (n) => n > 0 }))

/** Milliseconds or a duration string ("30 seconds"), as the other `PANTHEON_*` durations. */
const positiveDuration = (name: string) =>
  Config.mapOrFail(Config.string(name), (text) => {
    const decoded = /^\d+$/.test(text.trim()) ? Option.some(Duration.millis(Number(text))) : Duration.decodeUnknown(text)
    return Option.isSome(decoded) && Duration.toMillis(decoded.value) > 0
      ? Either.right(decoded.value)
      : Either.left(ConfigError.InvalidData([], `must be a positive duration in milliseconds or a string such as "30 seconds" (got ${JSON.stringify(text)})`))
  })

/**
 * The embedder from the environment: an OpenAI-compatible server when `PANTHEON_EMBED_URL` is set,
 * Ollama when `PANTHEON_OLLAMA_URL` is, else feature hashing. Both set is refused (which one was meant?).
 */
export const EmbedderConfig = Config.all({
  ollamaUrl: Config.option(Config.string("PANTHEON_OLLAMA_URL")),
  ollamaModel: Config.string("PANTHEON_OLLAMA_MODEL").pipe(Config.withDefault("nomic-embed-text")),
  embedUrl: Config.option(
    Config.string("PANTHEON_EMBED_URL").pipe(Config.validate({ message: "must be an http or https URL", validation: (u) => /^https?:\/\/[^/]/i.test(u.trim()) }))
  ),
  /** Feature hashing's dimensions (default 256); for an OpenAI-compatible server, the `dimensions` asked for (unset: the model's). */
  dimensions: Config.option(positiveInteger("PANTHEON_EMBED_DIMENSIONS")),
  cacheBytes: Config.integer("PANTHEON_EMBED_CACHE_BYTES").pipe(Config.withDefault(DEFAULT_CACHE_BYTES))
}).pipe(
  Config.mapOrFail((c) =>
    Option.isSome(c.embedUrl) && Option.isSome(c.ollamaUrl)
      ? Either.left(
          ConfigError.InvalidData(
            ["PANTHEON_EMBED_URL"],
            "is set together with PANTHEON_OLLAMA_URL: set one (Ollama also serves the OpenAI API: PANTHEON_EMBED_URL=<ollama url>/v1)"
          )
        )
      : Either.right(c)
  )
)

/** What only the OpenAI-compatible embedder reads (when `PANTHEON_EMBED_URL` is set). */
export const OpenAIEmbedderEnvConfig = Config.all({
  model: Config.option(Config.string("PANTHEON_EMBED_MODEL")),
  apiKey: Config.option(Config.redacted("PANTHEON_EMBED_API_KEY")),
  maxBatchTexts: Config.option(positiveInteger("PANTHEON_EMBED_BATCH")),
  timeout: Config.option(positiveDuration("PANTHEON_EMBED_TIMEOUT"))
})

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
    Layer.scoped(Embedder, Effect.flatMap(openai(options), (e) => cached(e, options.cacheBytes)))

  /** Ollama behind the cache. Fails to build if the server cannot embed a probe text. */
  static readonly layerOllama = (
    options: OllamaConfig & { readonly cacheBytes?: number } = {}
  ): Layer.Layer<Embedder, EmbedError, HttpClient.HttpClient> =>
    Layer.scoped(Embedder, Effect.flatMap(ollama(options), (e) => cached(e, options.cacheBytes)))

  /**
   * From the environment (`EmbedderConfig`): an OpenAI-compatible server when `PANTHEON_EMBED_URL` is
   * set, Ollama when `PANTHEON_OLLAMA_URL` is, else feature hashing; all cached.
   */
  static readonly layerFromEnv: Layer.Layer<Embedder, EmbedError | ConfigError.ConfigError> = Layer.unwrapEffect(
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
            }).pipe(
              Layer.provide(FetchHttpClient.layer),
              // The env values were validated above; what is left (a URL that does not parse) is the URL's.
              Layer.mapError((e) => (e._tag === "InvalidConfig" ? ConfigError.InvalidData(["PANTHEON_EMBED_URL"], e.message) : e))
            )
          ),
        onNone: () =>
          Effect.succeed(
            Option.isSome(c.ollamaUrl)
              ? Embedder.layerOllama({ url: c.ollamaUrl.value, model: c.ollamaModel, cacheBytes: c.cacheBytes }).pipe(Layer.provide(FetchHttpClient.layer))
              : Embedder.layerFeatureHashing({ dimensions: Option.getOrElse(c.dimensions, () => 256), cacheBytes: c.cacheBytes })
          )
      })
    )
  )
}
