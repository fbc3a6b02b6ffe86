/**
 * Embedder: texts → unit vectors. Feature hashing by default (`hashing.ts`: no model, no download),
 * Ollama when configured (`ollama.ts`); every layer puts the byte-bounded cache (`cached.ts`) in
 * front, so each text is embedded once however many callers ask for it.
 */
// Subpaths, not the barrel: "@effect/platform" would load every module of the package at import.
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import { Context, Effect, Layer, Option } from "effect"
import { envInteger, envText, isUrl } from "../domain/config.js"
import type { EmbedError, InvalidConfig } from "../domain/errors.js"
import { cached, DEFAULT_CACHE_BYTES } from "./cached.js"
import { featureHashing } from "./hashing.js"
import { ollama, type OllamaConfig } from "./ollama.js"

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

/** The embedder from the environment: Ollama when `PANTHEON_OLLAMA_URL` is set, else feature hashing. A bad value is an `InvalidConfig` naming the variable. */
export const EmbedderConfig = Effect.all({
  ollamaUrl: Effect.map(
    envText("PANTHEON_OLLAMA_URL", "url", { fallback: "", valid: (url) => isUrl(url, ["http:", "https:"]), reason: "must be an http:// or https:// URL" }),
    (url) => (url === "" ? Option.none() : Option.some(url))
  ),
  ollamaModel: envText("PANTHEON_OLLAMA_MODEL", "model", { fallback: "nomic-embed-text" }),
  dimensions: envInteger("PANTHEON_EMBED_DIMENSIONS", "dimensions", 256, 1),
  cacheBytes: envInteger("PANTHEON_EMBED_CACHE_BYTES", "cacheBytes", DEFAULT_CACHE_BYTES, 0)
})

export class Embedder extends Context.Tag("pantheon-persistence/Embedder")<Embedder, EmbedderShape>() {
  /** Feature hashing behind the cache: the default, needs nothing. */
  static readonly layerFeatureHashing = (options: { readonly dimensions?: number; readonly cacheBytes?: number } = {}): Layer.Layer<Embedder> =>
    Layer.scoped(Embedder, cached(featureHashing(options.dimensions ?? 256), options.cacheBytes))

  /** Ollama behind the cache. Fails to build if the server cannot embed a probe text. */
  static readonly layerOllama = (
    options: OllamaConfig & { readonly cacheBytes?: number } = {}
  ): Layer.Layer<Embedder, EmbedError, HttpClient.HttpClient> =>
    Layer.scoped(Embedder, Effect.flatMap(ollama(options), (e) => cached(e, options.cacheBytes)))

  /** From the environment: Ollama when `PANTHEON_OLLAMA_URL` is set, else feature hashing; both cached. */
  static readonly layerFromEnv: Layer.Layer<Embedder, EmbedError | InvalidConfig> = Layer.unwrapEffect(
    Effect.map(EmbedderConfig, (c) =>
      c.ollamaUrl._tag === "Some"
        ? Embedder.layerOllama({ url: c.ollamaUrl.value, model: c.ollamaModel, cacheBytes: c.cacheBytes }).pipe(Layer.provide(FetchHttpClient.layer))
        : Embedder.layerFeatureHashing({ dimensions: c.dimensions, cacheBytes: c.cacheBytes })
    )
  )
}
