/**
 * The embedding cache: the cache engine keyed by text, weighed in bytes, in front of any embedder.
 * A batch asks the model once for the texts that are neither cached nor being embedded for another
 * caller (`lookupMany`); a failure is shared by the callers that waited for it and not kept.
 */
import { Effect, Either, Exit } from "effect"
import * as LoadingCache from "../cache/LoadingCache.js"
import type { EmbedError } from "../domain/errors.js"
import type { EmbedderShape, EmbedderStats } from "./Embedder.js"

/** What one cached vector costs: its floats, its text (UTF-16) and the bookkeeping around them. */
export const entryBytes = (text: string, v: Float32Array) => v.byteLength + text.length * 2 + 96

export const DEFAULT_CACHE_BYTES = 32 * 1024 * 1024

export const cached = (embedder: EmbedderShape, maxBytes = DEFAULT_CACHE_BYTES) =>
  Effect.gen(function* () {
    const cache = yield* LoadingCache.makeWith({
      capacity: Infinity,
      lookup: (text: string) => Effect.map(embedder.embed([text]), (vectors) => vectors[0]!),
      lookupMany: embedder.embed,
      // A text's vector never changes; a failure is not remembered (the next caller retries).
      timeToLive: Exit.match({ onFailure: () => 0, onSuccess: () => Infinity }),
      weigher: entryBytes,
      maxWeight: maxBytes,
      label: "embeddings"
    })
    const embed = (texts: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<Float32Array>, EmbedError> =>
      texts.length === 0
        ? Effect.succeed([])
        : cache.getMany(texts).pipe(
            Effect.flatMap((results) => Effect.all(results.map((r) => (Either.isRight(r) ? Effect.succeed(r.right) : Effect.fail(r.left))))),
            Effect.withSpan("Embedder.embed", { attributes: { model: embedder.model, texts: texts.length }, captureStackTrace: false })
          )
    const stats = Effect.zipWith(embedder.stats, cache.stats, (inner, own): EmbedderStats => ({
      hits: own.hits,
      misses: own.misses,
      entries: own.size,
      bytes: own.weight,
      calls: inner.calls,
      embedded: inner.embedded
    }))
    return { model: embedder.model, dimensions: embedder.dimensions, embed, stats } satisfies EmbedderShape
  })
