/**
 * Feature hashing: texts → vectors with no model and no download. Lower-cased words and word
 * bigrams are hashed (with a sign hash) into a fixed number of dimensions and L2-normalised, so
 * cosine similarity measures shared words and phrases. Deterministic: a text always gets one vector.
 */
import { Effect } from "effect"
import { fnv1a } from "../hash.js"
import type { EmbedderShape } from "./Embedder.js"
import { normalize } from "./vector.js"

export const tokenize = (text: string): Array<string> => text.toLowerCase().normalize("NFKC").match(/[\p{L}\p{N}]+/gu) ?? []

/** The vector of one text: words and word bigrams hashed into `dimensions` signed buckets, unit length. */
export const featureHashingVector = (text: string, dimensions: number): Float32Array => {
  const v = new Float32Array(dimensions)
  const words = tokenize(text)
  const add = (feature: string, weight: number) => {
    const h = fnv1a(feature)
    const sign = fnv1a(feature, 0x9747b28c) & 1 ? 1 : -1
    v[h % dimensions]! += sign * weight
  }
  for (let i = 0; i < words.length; i++) {
    add(words[i]!, 1)
    if (i > 0) add(`${words[i - 1]} ${words[i]}`, 0.5)
  }
  return normalize(v)
}

/** The feature-hashing embedder (uncached: it is cheaper than a cache lookup's bookkeeping only for tiny texts). */
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
