/**
 * The in-memory floor of w7: the compile's answer computed by plain loops over Float32Arrays and
 * term arrays (no Effect, no cache, no index, no database), with the same semantics as the stores'
 * queries (hybrid relevance) and the same pure steps of compile. What a full scan costs.
 */
import { assemble, buildSeeds, combine, defaultResolvers } from "../../src/domain/compile.js"
import type { Message, StoreEntry } from "../../src/domain/schemas.js"
import { documentText, terms } from "../../src/relevance/analyzer.js"
import { CONTEXT_WEIGHTS, idf, roundScore, termScore, VECTOR_DEPTH, VECTOR_WEIGHT } from "../../src/relevance/scoring.js"

export interface FloorSource {
  readonly dims: number
  readonly ids: Array<string>
  readonly texts: Array<string>
  readonly timestamps: Array<number>
  readonly metadata: Array<Record<string, unknown>>
  readonly vectors: Float32Array
  /** Whether a row is an image (`type` any case of "image"). */
  readonly isImage: Array<boolean>
  /** Each row's terms (the analyzer's, of what it is found by) and each term's document frequency. */
  readonly terms: Array<Array<string>>
  readonly df: Map<string, number>
  /** Row numbers newest first (ts, then id, descending). */
  readonly byTime: Array<number>
}

export const floorSource = (rows: ReadonlyArray<{ id: string; text: string; ts: number; metadata: Record<string, unknown>; vector: Float32Array }>, dims: number): FloorSource => {
  const vectors = new Float32Array(rows.length * dims)
  rows.forEach((r, i) => vectors.set(r.vector, i * dims))
  const isImage = rows.map((r) => typeof r.metadata.type === "string" && r.metadata.type.toLowerCase() === "image")
  const byTime = rows.map((_, i) => i).sort((a, b) => rows[b]!.ts - rows[a]!.ts || (rows[b]!.id > rows[a]!.id ? 1 : -1))
  const rowTerms = rows.map((r) => (r.text.trim().length > 0 ? terms(documentText(r)) : []))
  const df = new Map<string, number>()
  for (const list of rowTerms) for (const t of new Set(list)) df.set(t, (df.get(t) ?? 0) + 1)
  return { dims, ids: rows.map((r) => r.id), texts: rows.map((r) => r.text), timestamps: rows.map((r) => r.ts), metadata: rows.map((r) => r.metadata), vectors, isImage, terms: rowTerms, df, byTime }
}

const entry = (s: FloorSource, r: number): StoreEntry => ({ id: s.ids[r]!, text: s.texts[r]!, timestamp: s.timestamps[r]!, metadata: s.metadata[r]! })

/** A relevance question as the stores read it: its texts' terms (the analyzer's) and vectors. */
export interface FloorQuestion {
  readonly terms: ReadonlyArray<string>
  readonly vectors: ReadonlyArray<Float32Array>
}

/**
 * Hybrid relevance by plain loops (src/relevance/scoring.ts): every row's BM25 by scanning its
 * terms, every row's cosine, the `VECTOR_DEPTH` nearest by a sort, the base spread to the rows
 * around it in time; then the `limit` distinct texts that `keep` allows, best first, ties by id.
 */
export const rank = (s: FloorSource, question: FloorQuestion, limit: number, keep: (row: number) => boolean = () => true): Array<StoreEntry> => {
  const n = s.ids.length
  const searchable = s.texts.map((t) => t.trim().length > 0)
  const count = searchable.filter(Boolean).length
  let totalLength = 0
  for (let r = 0; r < n; r++) if (searchable[r]) totalLength += s.terms[r]!.length
  const average = count > 0 ? totalLength / count : 0
  const wanted = [...new Set(question.terms)]
  const df = wanted.map((t) => s.df.get(t) ?? 0)
  const lexical = new Float64Array(n)
  let best = 0
  for (let r = 0; r < n; r++) {
    if (!searchable[r]) continue
    const rowTerms = s.terms[r]!
    let score = 0
    for (let q = 0; q < wanted.length; q++) {
      let tf = 0
      for (const t of rowTerms) if (t === wanted[q]) tf++
      if (tf > 0) score += termScore(idf(count, df[q]!), Math.min(tf, 256), rowTerms.length, average)
    }
    lexical[r] = score
    if (score > best) best = score
  }
  const cosine: Array<{ r: number; score: number }> = []
  for (let r = 0; r < n; r++) {
    if (!searchable[r]) continue
    let top = -Infinity
    const o = r * s.dims
    for (const v of question.vectors) {
      let dot = 0
      for (let j = 0; j < s.dims; j++) dot += v[j]! * s.vectors[o + j]!
      if (dot > top) top = dot
    }
    cosine.push({ r, score: roundScore(top) })
  }
  cosine.sort((a, b) => b.score - a.score || (s.ids[a.r]! < s.ids[b.r]! ? -1 : 1))
  const base = new Float64Array(n)
  for (let r = 0; r < n; r++) base[r] = best > 0 ? lexical[r]! / best : 0
  for (const { r, score } of cosine.slice(0, VECTOR_DEPTH)) if (score > 0) base[r] = base[r]! + VECTOR_WEIGHT * score
  const timeline = s.byTime.filter((r) => searchable[r]).reverse()
  const at = (p: number) => (p >= 0 && p < timeline.length ? base[timeline[p]!]! : 0)
  const scored: Array<{ r: number; score: number }> = []
  timeline.forEach((r, p) => {
    let score = at(p)
    for (let d = 1; d <= CONTEXT_WEIGHTS.length; d++) score += CONTEXT_WEIGHTS[d - 1]! * (at(p - d) + at(p + d))
    const rounded = roundScore(score)
    if (rounded > 0 && keep(r)) scored.push({ r, score: rounded })
  })
  scored.sort((a, b) => b.score - a.score || (s.ids[a.r]! < s.ids[b.r]! ? -1 : 1))
  const seen = new Set<string>()
  const out: Array<StoreEntry> = []
  for (const { r } of scored) {
    if (seen.has(s.texts[r]!)) continue
    seen.add(s.texts[r]!)
    out.push(entry(s, r))
    if (out.length === limit) break
  }
  return out
}

/** The floor's question for some texts: as the stores build it. */
export const floorQuestion = (texts: ReadonlyArray<string>, embed: (text: string) => Float32Array): FloorQuestion => ({
  terms: [...new Set(texts.flatMap(terms))],
  vectors: texts.map(embed)
})

/** A compile of `sources` with default limits (recent 10, seeds 5, limit 20) and default resolvers, the question being `texts`. */
export const floorCompile = (sources: ReadonlyArray<FloorSource>, texts: ReadonlyArray<string>, embed: (text: string) => Float32Array): Array<Message> => {
  const recent = sources.map((s) => s.byTime.slice(0, 10).map((r) => entry(s, r)))
  const seeds = buildSeeds(texts, recent.flat(), 5)
  const question = floorQuestion(texts.length > 0 ? texts : seeds, embed)
  const relevant = sources.map((s, i) => {
    const held = new Set(recent[i]!.map((e) => e.id))
    return rank(s, question, 20, (r) => !held.has(s.ids[r]))
  })
  const images = sources.map((s, i) => {
    const held = new Set(recent[i]!.map((e) => e.id))
    return rank(s, question, 20, (r) => s.isImage[r]! && !held.has(s.ids[r]))
  })
  return assemble(combine(relevant, recent, images, { questionFirst: texts.length > 0 }), { limit: 20, managers: sources.length, resolvers: defaultResolvers }).messages
}
