/**
 * The in-memory floor of w7: the compile's answer computed by plain loops over Float32Arrays (no
 * Effect, no cache, no database), with the same semantics as the stores' queries and the same pure
 * steps of compile. What any implementation of this library must at least pay.
 */
import { assemble, buildSeeds, combine, defaultResolvers } from "../../src/domain/compile.js"
import type { Message, StoreEntry } from "../../src/domain/schemas.js"

export interface FloorSource {
  readonly dims: number
  readonly ids: Array<string>
  readonly texts: Array<string>
  readonly timestamps: Array<number>
  readonly metadata: Array<Record<string, unknown>>
  readonly vectors: Float32Array
  readonly images: Array<number>
  /** Row numbers newest first (ts, then id, descending). */
  readonly byTime: Array<number>
}

export const floorSource = (rows: ReadonlyArray<{ id: string; text: string; ts: number; metadata: Record<string, unknown>; vector: Float32Array }>, dims: number): FloorSource => {
  const vectors = new Float32Array(rows.length * dims)
  rows.forEach((r, i) => vectors.set(r.vector, i * dims))
  const images = rows.flatMap((r, i) => (typeof r.metadata.type === "string" && r.metadata.type.toLowerCase() === "image" ? [i] : []))
  const byTime = rows.map((_, i) => i).sort((a, b) => rows[b]!.ts - rows[a]!.ts || (rows[b]!.id > rows[a]!.id ? 1 : -1))
  return { dims, ids: rows.map((r) => r.id), texts: rows.map((r) => r.text), timestamps: rows.map((r) => r.ts), metadata: rows.map((r) => r.metadata), vectors, images, byTime }
}

const entry = (s: FloorSource, r: number): StoreEntry => ({ id: s.ids[r]!, text: s.texts[r]!, timestamp: s.timestamps[r]!, metadata: s.metadata[r]! })

/**
 * The `limit` distinct texts with the best score over the seeds (to 6 decimals), ties by id: every
 * row scored, the best kept in a sorted window a few times `limit` wide (wider on a retry, when
 * duplicate texts fill it).
 */
export const rank = (s: FloorSource, seeds: ReadonlyArray<Float32Array>, limit: number, rows?: ReadonlyArray<number>): Array<StoreEntry> => {
  const candidates = rows ?? s.ids.map((_, i) => i)
  const scores = new Float64Array(candidates.length)
  candidates.forEach((r, i) => {
    let best = -Infinity
    const o = r * s.dims
    for (const q of seeds) {
      let dot = 0
      for (let j = 0; j < s.dims; j++) dot += q[j]! * s.vectors[o + j]!
      if (dot > best) best = dot
    }
    scores[i] = Math.round(best * 1e6) / 1e6
  })
  const before = (a: number, b: number) => scores[a]! > scores[b]! || (scores[a] === scores[b] && s.ids[candidates[a]!]! < s.ids[candidates[b]!]!)
  for (let width = limit * 4; ; width *= 4) {
    const window: Array<number> = []
    for (let i = 0; i < candidates.length; i++) {
      if (window.length === width && !before(i, window[width - 1]!)) continue
      let p = window.length === width ? width - 1 : window.length
      window[p] = i
      while (p > 0 && before(i, window[p - 1]!)) {
        window[p] = window[p - 1]!
        window[--p] = i
      }
    }
    const seen = new Set<string>()
    const out: Array<StoreEntry> = []
    for (const i of window) {
      const r = candidates[i]!
      if (seen.has(s.texts[r]!) || s.texts[r]!.trim() === "") continue
      seen.add(s.texts[r]!)
      out.push(entry(s, r))
      if (out.length === limit) break
    }
    if (out.length === limit || width >= candidates.length) return out
  }
}

/** A compile of `sources` with default limits (recent 10, seeds 5, limit 20) and default resolvers. */
export const floorCompile = (sources: ReadonlyArray<FloorSource>, texts: ReadonlyArray<string>, embed: (text: string) => Float32Array): Array<Message> => {
  const recent = sources.map((s) => s.byTime.slice(0, 10).map((r) => entry(s, r)))
  const seeds = buildSeeds(texts, recent.flat(), 5)
  const vectors = seeds.map(embed)
  const relevant = sources.map((s) => rank(s, vectors, 20))
  const images = sources.map((s) => rank(s, vectors, 20, s.images))
  return assemble(combine(relevant, recent, images), { limit: 20, managers: sources.length, resolvers: defaultResolvers }).messages
}
