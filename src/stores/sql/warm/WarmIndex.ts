/**
 * A source's entries in memory, for answering queries without the database: vectors in one
 * contiguous `Float32Array` (rows × dimensions), the analyzer's terms in an inverted index
 * (`LexicalIndex`), the rest in parallel arrays indexed by row.
 *
 * - `recent(limit, where)`: rows in (timestamp, id) descending order, the SQL store's order.
 * - `search(question, limit, where, exclude)`: hybrid relevance (src/relevance/scoring.ts), the
 *   same answer as the SQL statement: BM25 from the inverted index, the vectors' cosine for the
 *   nearest rows (an exact search, `ExactSearch`), both spread to each row's neighbours in time;
 *   the filter (domain/filter.ts, `matchesRow`) and the excluded ids choose among the scored rows.
 * - `upsert` keeps it current row by row (by id); `bytes` estimates what it holds, for the cache's
 *   byte budget.
 */
import { type Filter, filterKey, isAll, matchesRow } from "../../../domain/filter.js"
import type { StoreEntry } from "../../../domain/schemas.js"
import { CONTEXT_RADIUS, CONTEXT_WEIGHTS, roundScore, VECTOR_DEPTH, VECTOR_WEIGHT } from "../../../relevance/scoring.js"
import { bestScores, nearest } from "./ExactSearch.js"
import { kthLargest } from "./kthLargest.js"
import { LexicalIndex } from "./LexicalIndex.js"

/** Object, array-slot and map-entry overhead of one row, estimated (V8, 64-bit). */
const ROW_OVERHEAD_BYTES = 240
/** Nearest rows asked of each vector beyond `VECTOR_DEPTH`: room for ties at the cut before a retry. */
const CANDIDATE_MARGIN = 8
/** Filters whose verdicts over the rows are kept until the next write. */
const FILTERS_HELD = 8
/** A row's verdict under a filter: not asked yet, passes, does not. */
const UNASKED = 0
const PASSED = 1
const REFUSED = 2
/** A score must clear the cut by this much (float32 search, scores rounded to 1e-6). */
const SCORE_EPSILON = 2e-6

export interface WarmRow {
  readonly id: string
  readonly text: string
  readonly ts: number
  readonly metadata: Readonly<Record<string, unknown>>
  readonly seq: number
}

/** What a relevance query asks: the question's terms (the analyzer's) and its texts' vectors. */
export interface Question {
  readonly terms: ReadonlyArray<string>
  readonly vectors: ReadonlyArray<Float32Array>
  /** Identifies the question (its texts), for reusing its scores between the text and the image query. */
  readonly key: string
}

/** The searchable rows in ascending (timestamp, id) order, and each row's place in it (-1: not searchable). */
interface Timeline {
  readonly rows: Int32Array
  readonly position: Int32Array
}

export class WarmIndex {
  /** The highest `seq` applied: rows past it are fetched by a catch-up. */
  highWater = 0
  private count = 0
  private vectors: Float32Array
  private readonly ids: Array<string> = []
  private readonly texts: Array<string> = []
  private readonly timestamps: Array<number> = []
  private readonly metadata: Array<Readonly<Record<string, unknown>>> = []
  /** Whether a row takes part in relevance (its text is not blank: the store keeps no vector for it). */
  private searchable = new Uint8Array(0)
  private readonly lexical = new LexicalIndex()
  private readonly rowBytes: Array<number> = []
  private readonly byId = new Map<string, number>()
  private rowsBytes = 0
  /**
   * Every row newest first (ties: larger id first), and the rows written since it was last brought
   * up to date (`settle`): those are merged into it, so a write to a large source costs a pass over
   * the order, not a sort of it (200,000 rows: about 100 ms of this thread).
   */
  private order: Int32Array | undefined
  private moved: Array<number> = []
  /** Derived views, rebuilt on first use after a write. */
  private timeline: Timeline | undefined
  private lastBase: { readonly key: string; readonly base: Float64Array; readonly touched: Array<number> } | undefined
  private readonly filterVerdicts = new Map<string, Uint8Array>()

  constructor(readonly dimensions: number, capacity = 64) {
    this.vectors = new Float32Array(Math.max(1, capacity) * dimensions)
    this.searchable = new Uint8Array(Math.max(1, capacity))
  }

  get size(): number {
    return this.count
  }

  /** What the index holds in memory, estimated in bytes: its rows, its inverted index and its orders. */
  get bytes(): number {
    let derived = (this.order?.byteLength ?? 0) + (this.timeline === undefined ? 0 : this.timeline.rows.byteLength + this.timeline.position.byteLength)
    for (const verdicts of this.filterVerdicts.values()) derived += verdicts.byteLength
    return this.vectors.byteLength + this.searchable.byteLength + this.rowsBytes + this.lexical.bytes + derived
  }

  /**
   * Adds or replaces a row (by id). `vector` is read from `source` at `offset` (the dimensions'
   * floats); `terms` are the analyzer's terms of the row (with no vector the row takes no part in
   * relevance: a blank text).
   */
  upsert(row: WarmRow, source: Float32Array | undefined, terms: ReadonlyArray<string>, offset = 0): void {
    let r = this.byId.get(row.id)
    if (r === undefined) {
      r = this.count++
      this.grow(this.count)
      this.byId.set(row.id, r)
      this.ids[r] = row.id
    } else {
      this.rowsBytes -= this.rowBytes[r]!
    }
    this.texts[r] = row.text
    this.timestamps[r] = row.ts
    this.metadata[r] = row.metadata
    const o = r * this.dimensions
    if (source === undefined) this.vectors.fill(0, o, o + this.dimensions)
    else this.vectors.set(source.subarray(offset, offset + this.dimensions), o)
    const searchable = source !== undefined && row.text.trim().length > 0
    this.searchable[r] = searchable ? 1 : 0
    this.lexical.set(r, searchable ? terms : undefined)
    const bytes = ROW_OVERHEAD_BYTES + 2 * (row.id.length + row.text.length) + 2 * JSON.stringify(row.metadata).length
    this.rowBytes[r] = bytes
    this.rowsBytes += bytes
    this.highWater = Math.max(this.highWater, row.seq)
    if (this.order !== undefined) this.moved.push(r)
    this.timeline = undefined
    this.lastBase = undefined
    if (this.filterVerdicts.size > 0) this.filterVerdicts.clear()
  }

  /** The newest `limit` entries that pass the filter, newest first (ties: larger id first). */
  recent(limit: number, where: Filter): Array<StoreEntry> {
    const order = this.settle()
    const out: Array<StoreEntry> = []
    const filtered = !isAll(where)
    for (let i = 0; i < order.length && out.length < limit; i++) {
      const r = order[i]!
      if (!filtered || this.passes(r, where)) out.push(this.entry(r))
    }
    return out
  }

  /**
   * The first half of `search`'s work for this question (its base scores, kept until the next write
   * or another question): a caller that cuts a long search in two calls it first.
   */
  prepare(question: Question): void {
    if (this.count > 0) this.baseScores(question)
  }

  /**
   * The `limit` entries of distinct texts that pass the filter and are not in `exclude` (ids),
   * ranked by hybrid relevance to the question, best first, ties by id; only entries that score
   * above 0 (after rounding). The same answer as the SQL statement.
   */
  search(question: Question, limit: number, where: Filter, exclude: ReadonlySet<string> = new Set()): Array<StoreEntry> {
    if (limit <= 0 || this.count === 0) return []
    const { timeline, base, touched } = this.baseScores(question)
    const length = timeline.rows.length
    const at = (p: number) => (p >= 0 && p < length ? base[p]! : 0)
    const verdicts = isAll(where) ? undefined : this.verdicts(where)
    const excluded = new Set<number>()
    for (const id of exclude) {
      const r = this.byId.get(id)
      if (r !== undefined) excluded.add(r)
    }
    // The candidates: rows asked for (the filter, not excluded) whose spread score is above 0.
    const span = 2 * CONTEXT_RADIUS + 1
    const room = Math.min(length, touched.length * span)
    const rows = new Int32Array(room)
    const scores = new Float64Array(room)
    let n = 0
    const consider = (p: number) => {
      const row = timeline.rows[p]!
      if ((verdicts !== undefined && verdicts[row] === REFUSED) || (excluded.size > 0 && excluded.has(row))) return
      let score = at(p)
      for (let d = 1; d <= CONTEXT_RADIUS; d++) score += CONTEXT_WEIGHTS[d - 1]! * (at(p - d) + at(p + d))
      const rounded = roundScore(score)
      if (rounded <= 0 || (verdicts !== undefined && !this.passesOnce(row, where, verdicts))) return
      rows[n] = row
      scores[n++] = rounded
    }
    if (room === length) {
      // Most places can score: one pass over all of them.
      for (let p = 0; p < length; p++) consider(p)
    } else {
      // The places with a base score and their neighbours, each once.
      const marked = new Uint8Array(length)
      for (const p of touched) {
        for (let q = Math.max(0, p - CONTEXT_RADIUS); q <= Math.min(length - 1, p + CONTEXT_RADIUS); q++) {
          if (marked[q] === 0) {
            marked[q] = 1
            consider(q)
          }
        }
      }
    }
    // Only the best few need ordering: those at or above the k-th best score (k grows when copies of a text fill it).
    for (let k = Math.min(n, limit * 4); ; k = Math.min(n, k * 4)) {
      const cut = k === 0 ? Infinity : kthLargest(scores, n, k)
      const best: Array<number> = []
      for (let i = 0; i < n; i++) if (scores[i]! >= cut) best.push(i)
      best.sort((x, y) => scores[y]! - scores[x]! || (this.ids[rows[x]!]! < this.ids[rows[y]!]! ? -1 : 1))
      const seen = new Set<string>()
      const out: Array<StoreEntry> = []
      for (const i of best) {
        const text = this.texts[rows[i]!]!
        if (seen.has(text)) continue
        seen.add(text)
        out.push(this.entry(rows[i]!))
        if (out.length === limit) break
      }
      if (out.length === limit || k >= n) return out
    }
  }

  /**
   * base(d) of every searchable row, by its place in time: its BM25 over the best BM25 of the
   * source, plus `VECTOR_WEIGHT` × its cosine when it is among the `VECTOR_DEPTH` nearest; and the
   * places whose base is above 0. The last question's are kept until the next write (the text and
   * the image query ask the same).
   */
  private baseScores(question: Question): { readonly timeline: Timeline; readonly base: Float64Array; readonly touched: Array<number> } {
    const timeline = (this.timeline ??= this.byTimeAscending())
    const last = this.lastBase
    if (last?.key === question.key) return { timeline, base: last.base, touched: last.touched }
    const base = new Float64Array(timeline.rows.length)
    const touched: Array<number> = []
    const lexical = new Float64Array(this.count)
    const matched = this.lexical.scoreInto(question.terms, lexical)
    let best = 0
    for (const row of matched) best = Math.max(best, lexical[row]!)
    for (const row of matched) {
      const p = timeline.position[row]!
      base[p] = lexical[row]! / best
      touched.push(p)
    }
    for (const { row, score } of this.nearestRows(question.vectors)) {
      if (score <= 0) continue
      const p = timeline.position[row]!
      if (base[p] === 0) touched.push(p)
      base[p] = base[p]! + VECTOR_WEIGHT * score
    }
    this.lastBase = { key: question.key, base, touched }
    return { timeline, base, touched }
  }

  /**
   * The `VECTOR_DEPTH` searchable rows with the largest cosine to any of the vectors, best first,
   * ties by id: exact, as the statement's full scan. A row of that top is in the top of the vector it
   * is best for, so each vector's k nearest are candidates, and k grows until every row outside them
   * scores below the last one kept (ties at the cut included).
   */
  private nearestRows(vectors: ReadonlyArray<Float32Array>): Array<{ row: number; score: number }> {
    if (vectors.length === 0 || this.count === 0) return []
    for (let k = Math.min(this.count, VECTOR_DEPTH + CANDIDATE_MARGIN); ; k = Math.min(this.count, k * 4)) {
      const candidates = new Set<number>()
      let cut = -Infinity
      for (const found of nearest(this.vectors, this.count, this.dimensions, vectors, k)) {
        found.rows.forEach((r) => candidates.add(r))
        if (found.rows.length === k) cut = Math.max(cut, roundScore(found.scores[k - 1]!))
      }
      const positions = Int32Array.from(candidates)
      const scores = bestScores(this.vectors, this.dimensions, positions, vectors)
      const rows: Array<{ row: number; score: number }> = []
      positions.forEach((row, i) => {
        if (this.searchable[row] === 1) rows.push({ row, score: roundScore(scores[i]!) })
      })
      rows.sort((a, b) => b.score - a.score || (this.ids[a.row]! < this.ids[b.row]! ? -1 : 1))
      const top = rows.slice(0, VECTOR_DEPTH)
      const last = top.length === VECTOR_DEPTH ? top[VECTOR_DEPTH - 1]!.score : -Infinity
      if (k >= this.count || last > cut + SCORE_EPSILON || cut <= 0) return top
    }
  }

  /** Whether row `r` passes the filter (domain/filter.ts: the one meaning of a `where`). */
  private passes(r: number, where: Filter): boolean {
    return matchesRow(where, this.metadata[r]!, this.timestamps[r]!)
  }

  /** `passes`, remembered in `verdicts`. */
  private passesOnce(r: number, where: Filter, verdicts: Uint8Array): boolean {
    if (verdicts[r] === UNASKED) verdicts[r] = this.passes(r, where) ? PASSED : REFUSED
    return verdicts[r] === PASSED
  }

  /**
   * The verdicts of a filter over the rows, filled as rows are asked about and kept for the last
   * `FILTERS_HELD` filters until the next write (a compile asks every source the same image filter).
   */
  private verdicts(where: Filter): Uint8Array {
    const key = filterKey(where)
    let verdicts = this.filterVerdicts.get(key)
    if (verdicts === undefined) {
      verdicts = new Uint8Array(this.count)
      if (this.filterVerdicts.size >= FILTERS_HELD) this.filterVerdicts.delete(this.filterVerdicts.keys().next().value!)
      this.filterVerdicts.set(key, verdicts)
    }
    return verdicts
  }

  /**
   * The order of every row, brought up to date: sorted once, then the rows written since merged in
   * (those rows sorted, the others kept in place). A reader calls it between pages of a long read,
   * so that the first answer finds it ready.
   */
  settle(): Int32Array {
    if (this.order === undefined) {
      this.order = Int32Array.from({ length: this.count }, (_, i) => i).sort(this.newerFirst)
      this.moved = []
      return this.order
    }
    if (this.moved.length === 0) return this.order
    const isMoved = new Uint8Array(this.count)
    const distinct: Array<number> = []
    for (const r of this.moved) if (isMoved[r] === 0) (isMoved[r] = 1, distinct.push(r))
    this.moved = []
    const changed = Int32Array.from(distinct).sort(this.newerFirst)
    const kept = this.order.filter((r) => isMoved[r] === 0)
    const merged = new Int32Array(this.count)
    let i = 0
    let j = 0
    let k = 0
    while (i < kept.length && j < changed.length) merged[k++] = this.newerFirst(kept[i]!, changed[j]!) <= 0 ? kept[i++]! : changed[j++]!
    merged.set(i < kept.length ? kept.subarray(i) : changed.subarray(j), k)
    this.order = merged
    return merged
  }

  /** Newest first; ties: larger id first. */
  private readonly newerFirst = (a: number, b: number): number => {
    const ts = this.timestamps
    const ids = this.ids
    return ts[b]! - ts[a]! || (ids[b]! > ids[a]! ? 1 : ids[b]! < ids[a]! ? -1 : 0)
  }

  /** The searchable rows oldest first (ties: smaller id first), as the statement's window orders them. */
  private byTimeAscending(): Timeline {
    const order = this.settle()
    const searchable = this.searchable
    const all = new Int32Array(order.length)
    const position = new Int32Array(this.count).fill(-1)
    let n = 0
    for (let i = order.length - 1; i >= 0; i--) {
      const r = order[i]!
      if (searchable[r] === 1) (position[r] = n, (all[n++] = r))
    }
    return { rows: all.slice(0, n), position }
  }

  private entry(r: number): StoreEntry {
    return { id: this.ids[r]!, text: this.texts[r]!, timestamp: this.timestamps[r]!, metadata: this.metadata[r]! }
  }

  private grow(rows: number): void {
    const capacity = this.vectors.length / this.dimensions
    if (rows <= capacity) return
    const next = Math.max(rows, Math.ceil(capacity * 1.5))
    const vectors = new Float32Array(next * this.dimensions)
    vectors.set(this.vectors)
    this.vectors = vectors
    const searchable = new Uint8Array(next)
    searchable.set(this.searchable)
    this.searchable = searchable
  }
}
