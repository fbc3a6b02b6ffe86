/**
 * Hybrid relevance, the one definition both paths compute (the warm index in memory, the SQL
 * statement in manager.ts): a lexical score with IDF, fused with the vector score, then spread to
 * an entry's neighbours in time. Every constant is here, with why it has its value
 * (docs/decisions/relevance.md has the measurements).
 *
 * For a question Q (the distinct terms of its texts) and an entry d of a source:
 *   lexical(d) = Σ_t∈Q idf(t) · tf(t,d)·(K1+1) / (tf(t,d) + K1·(1 − B + B·|d| / avgdl))   (Okapi BM25)
 *   idf(t)     = ln(1 + (N − n(t) + 0.5) / (n(t) + 0.5))                                   (N, n, avgdl: the source's searchable entries)
 *   vector(d)  = max(0, max over the question's texts of cosine), for the VECTOR_DEPTH nearest entries (0 beyond)
 *   base(d)    = lexical(d) / max lexical + VECTOR_WEIGHT · vector(d)
 *   score(d)   = Σ_{|δ| ≤ CONTEXT_RADIUS} CONTEXT_DECAY^|δ| · base(entry at δ from d in the source's time order)
 * Ranked by score (rounded to 6 decimals), ties by id; entries with score 0 are not returned.
 */

/** BM25's term-frequency saturation: the textbook value (1.2-2.0 measured within 0.4 points). */
export const K1 = 1.2
/** BM25's length normalization: the textbook value (0.3-0.75 measured within 0.8 points). */
export const B = 0.75

/** The inverse document frequency of a term found in `n` of `count` entries (never negative). */
export const idf = (count: number, n: number): number => Math.log(1 + (count - n + 0.5) / (n + 0.5))

/** BM25's length term of an entry of `length` terms: `K1·(1 − B + B·|d| / avgdl)` (the same for every term of it). */
export const lengthNorm = (length: number, averageLength: number): number => K1 * (1 - B + (B * length) / (averageLength > 0 ? averageLength : 1))

/** One term's BM25 contribution, given the entry's `lengthNorm`. */
export const normedTermScore = (idfValue: number, tf: number, norm: number): number => (idfValue * tf * (K1 + 1)) / (tf + norm)

/** One term's BM25 contribution. */
export const termScore = (idfValue: number, tf: number, length: number, averageLength: number): number =>
  normedTermScore(idfValue, tf, lengthNorm(length, averageLength))

/**
 * The vector score's weight beside the lexical score (normalized to 1 at the best entry). Feature
 * hashing (the default embedder) knows no synonyms, so it mostly repeats the lexical score: small.
 */
export const VECTOR_WEIGHT = 0.1
/** How many of the nearest entries by vector take part (the others count 0 for the vector). */
export const VECTOR_DEPTH = 100

/** Neighbours on each side in time that share an entry's score: a turn is found by the talk around it. */
export const CONTEXT_RADIUS = 2
/** The share a neighbour passes on per step away (½, ¼): +10 points of evidence recall on LoCoMo. */
export const CONTEXT_DECAY = 0.5

/** `CONTEXT_DECAY^|δ|` for δ = 1..CONTEXT_RADIUS. */
export const CONTEXT_WEIGHTS: ReadonlyArray<number> = Array.from({ length: CONTEXT_RADIUS }, (_, i) => CONTEXT_DECAY ** (i + 1))

/** Scores are compared to 6 decimals on both paths (float sums differ in the last digits). */
export const roundScore = (score: number): number => Math.round(score * 1e6) / 1e6
