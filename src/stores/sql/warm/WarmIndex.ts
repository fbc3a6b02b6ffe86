/**
 * A source's entries in memory, for answering queries without the database: vectors in one
 * contiguous `Float32Array` (rows × dimensions), the rest in parallel arrays indexed by row.
 *
 * - `recent(limit, where)`: rows in (timestamp, id) descending order, the SQL store's order.
 * - `relevant(seeds, limit, where)`: the `limit` entries of distinct texts with the largest inner
 *   product with any seed (cosine, for unit vectors), best first, ties by id: the same answer as
 *   the SQL store's statement. Exact: candidates come from an exact top-k per seed (`ExactSearch`),
 *   each is scored against every seed, and k grows until no row outside them could still rank (the
 *   `limit`-th score is above every seed's k-th score), so duplicates of a text cannot crowd a
 *   better text out.
 * - From `QUANTIZED_FROM` rows, the candidates of an unfiltered query come from an int8 copy of the
 *   vectors, each with a bound on its error; they are re-scored in float32, and the same stopping
 *   rule (with the bounds) keeps the answer exact.
 * - A filter (domain/filter.ts, `matchesRow`) narrows the rows first; the image subset (`type` any
 *   case of "image") and the last few filters keep their rows gathered, until the next write.
 * - `upsert` keeps it current row by row (by id); `bytes` estimates what it holds, for the cache's
 *   byte budget.
 */
import { type Filter, filterKey, isAll, isImageFilter, matchesRow } from "../../../domain/filter.js"
import type { StoreEntry } from "../../../domain/schemas.js"
import { norm } from "../../../embedding/vector.js"
import { bestScores, nearest, nearestQuantized, quantize, quantizedSearch } from "./ExactSearch.js"

/** Object, array-slot and map-entry overhead of one row, estimated (V8, 64-bit). */
const ROW_OVERHEAD_BYTES = 240
/** Gathered filter subsets kept at once (the image subset is kept besides). */
const SUBSET_CACHE = 8
/** Candidates asked of the exact search beyond `limit`: room for duplicate texts before a retry. */
const CANDIDATE_MARGIN = 8
/** From this many rows, a search over all of them starts with the int8 copy (below, float32 is as fast as the extra pass). */
const QUANTIZED_FROM = 4096
/** Candidates asked of the int8 search: its bound is loose (~0.03 of cosine), and 128 was enough for every w7 question. */
const QUANTIZED_CANDIDATES = 128
/** A rank's score must clear the cut by this much (float32 search, scores rounded to 1e-6). */
const SCORE_EPSILON = 2e-6

export interface WarmRow {
  readonly id: string
  readonly text: string
  readonly ts: number
  readonly metadata: Readonly<Record<string, unknown>>
  readonly seq: number
}

interface Subset {
  /** Row numbers of the subset, in subset order. */
  readonly rows: Int32Array
  /** Their vectors, gathered contiguously. */
  readonly vectors: Float32Array
}

export class WarmIndex {
  /** The highest `seq` applied: rows past it are fetched by a catch-up. */
  highWater = 0
  private count = 0
  private vectors: Float32Array
  /** The vectors as int8 (when usearch runs), and the largest norm and rounding error of any row. */
  private quantized: Int8Array | undefined
  private rowNorm = 0
  private rowError = 0
  private readonly ids: Array<string> = []
  private readonly texts: Array<string> = []
  private readonly timestamps: Array<number> = []
  private readonly metadata: Array<Readonly<Record<string, unknown>>> = []
  /** Whether a row takes part in relevance (its text is not blank: the store keeps no vector for it). */
  private searchable = new Uint8Array(0)
  private readonly rowBytes: Array<number> = []
  private readonly byId = new Map<string, number>()
  private rowsBytes = 0
  /** Derived views, rebuilt on first use after a write. */
  private order: Int32Array | undefined
  private images: Subset | undefined
  private readonly subsets = new Map<string, Subset>()

  constructor(readonly dimensions: number, capacity = 64) {
    this.vectors = new Float32Array(Math.max(1, capacity) * dimensions)
    this.quantized = quantizedSearch ? new Int8Array(this.vectors.length) : undefined
    this.searchable = new Uint8Array(Math.max(1, capacity))
  }

  get size(): number {
    return this.count
  }

  /** What the index holds in memory, estimated in bytes: its rows and its gathered subsets. */
  get bytes(): number {
    let derived = (this.order?.byteLength ?? 0) + (this.images === undefined ? 0 : this.images.vectors.byteLength + this.images.rows.byteLength)
    for (const s of this.subsets.values()) derived += s.vectors.byteLength + s.rows.byteLength
    return this.vectors.byteLength + (this.quantized?.byteLength ?? 0) + this.searchable.byteLength + this.rowsBytes + derived
  }

  /** Adds or replaces a row (by id). `vector` is read from `source` at `offset` (the dimensions' floats). */
  upsert(row: WarmRow, source: Float32Array | undefined, offset = 0): void {
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
    if (source === undefined) {
      this.vectors.fill(0, o, o + this.dimensions)
      this.quantized?.fill(0, o, o + this.dimensions)
    } else {
      const vector = source.subarray(offset, offset + this.dimensions)
      this.vectors.set(vector, o)
      if (this.quantized !== undefined) {
        // The bounds only grow (a replaced row's may have been the largest): they stay bounds.
        this.rowError = Math.max(this.rowError, quantize(vector, this.quantized, o))
        this.rowNorm = Math.max(this.rowNorm, norm(vector))
      }
    }
    this.searchable[r] = source === undefined || row.text.trim().length === 0 ? 0 : 1
    const bytes = ROW_OVERHEAD_BYTES + 2 * (row.id.length + row.text.length) + 2 * JSON.stringify(row.metadata).length
    this.rowBytes[r] = bytes
    this.rowsBytes += bytes
    this.highWater = Math.max(this.highWater, row.seq)
    this.order = undefined
    this.images = undefined
    this.subsets.clear()
  }

  /** The newest `limit` entries that pass the filter, newest first (ties: larger id first). */
  recent(limit: number, where: Filter): Array<StoreEntry> {
    const order = (this.order ??= this.sortByTime())
    const out: Array<StoreEntry> = []
    const filtered = !isAll(where)
    for (let i = 0; i < order.length && out.length < limit; i++) {
      const r = order[i]!
      if (!filtered || this.passes(r, where)) out.push(this.entry(r))
    }
    return out
  }

  /** The `limit` entries of distinct texts most similar to any seed, best first, ties by id. */
  relevant(seeds: ReadonlyArray<Float32Array>, limit: number, where: Filter): Array<StoreEntry> {
    if (seeds.length === 0 || limit <= 0) return []
    const subset = this.subsetFor(where)
    const size = subset === undefined ? this.count : subset.rows.length
    if (size === 0) return []
    const vectors = subset === undefined ? this.vectors : subset.vectors
    const quantized = subset === undefined && size >= QUANTIZED_FROM ? this.quantized : undefined
    const first = quantized === undefined ? limit + CANDIDATE_MARGIN : Math.max(limit + CANDIDATE_MARGIN, QUANTIZED_CANDIDATES)
    for (let k = Math.min(size, first); ; k = Math.min(size, k * 4)) {
      // Every position outside the candidates scores at most the best of the seeds' k-th scores
      // (the int8 search's scores are upper bounds of the true ones).
      let cut = -Infinity
      const candidates = new Set<number>()
      const search = quantized === undefined
        ? nearest(vectors, size, this.dimensions, seeds, k)
        : nearestQuantized(quantized, size, this.dimensions, seeds, k, { rowNorm: this.rowNorm, rowError: this.rowError })
      for (const found of search) {
        found.rows.forEach((p) => candidates.add(p))
        if (found.rows.length === k) cut = Math.max(cut, found.scores[k - 1]!)
      }
      const positions = Int32Array.from(candidates)
      const scores = bestScores(vectors, this.dimensions, positions, seeds)
      const ranked = this.rank(positions, scores, subset, limit)
      if (k >= size || (ranked.length === limit && ranked[limit - 1]!.score > cut + SCORE_EPSILON)) return ranked.map(({ row }) => this.entry(row))
    }
  }

  /**
   * Best first, ties by id; one row per text (its best); at most `limit`. Scores are compared to 6
   * decimals, as the SQL statement rounds them (float32 sums differ in the last digits: rounded,
   * equal scores tie and fall to the id order). Rows with a blank text take no part.
   */
  private rank(positions: Int32Array, scores: Float32Array, subset: Subset | undefined, limit: number): Array<{ row: number; score: number }> {
    const rows: Array<{ row: number; score: number }> = []
    positions.forEach((p, i) => {
      const row = subset === undefined ? p : subset.rows[p]!
      if (this.searchable[row] === 1) rows.push({ row, score: Math.round(scores[i]! * 1e6) / 1e6 })
    })
    rows.sort((a, b) => b.score - a.score || (this.ids[a.row]! < this.ids[b.row]! ? -1 : 1))
    const seen = new Set<string>()
    const out: Array<{ row: number; score: number }> = []
    for (const candidate of rows) {
      const text = this.texts[candidate.row]!
      if (seen.has(text)) continue
      seen.add(text)
      out.push(candidate)
      if (out.length === limit) break
    }
    return out
  }

  /** The rows a filter leaves (undefined: all of them), gathered once per filter until the next write. */
  private subsetFor(where: Filter): Subset | undefined {
    if (isAll(where)) return undefined
    if (isImageFilter(where)) return (this.images ??= this.gather((r) => this.passes(r, where)))
    const key = filterKey(where)
    let subset = this.subsets.get(key)
    if (subset === undefined) {
      subset = this.gather((r) => this.passes(r, where))
      if (this.subsets.size >= SUBSET_CACHE) this.subsets.delete(this.subsets.keys().next().value!)
      this.subsets.set(key, subset)
    }
    return subset
  }

  private passes(r: number, where: Filter): boolean {
    return matchesRow(where, this.metadata[r]!, this.timestamps[r]!)
  }

  private gather(keep: (row: number) => boolean): Subset {
    const rows: Array<number> = []
    for (let r = 0; r < this.count; r++) if (keep(r)) rows.push(r)
    const vectors = new Float32Array(Math.max(1, rows.length) * this.dimensions)
    rows.forEach((r, i) => vectors.set(this.vectors.subarray(r * this.dimensions, (r + 1) * this.dimensions), i * this.dimensions))
    return { rows: Int32Array.from(rows), vectors }
  }

  private sortByTime(): Int32Array {
    const order = Int32Array.from({ length: this.count }, (_, i) => i)
    const ts = this.timestamps
    const ids = this.ids
    order.sort((a, b) => ts[b]! - ts[a]! || (ids[b]! > ids[a]! ? 1 : ids[b]! < ids[a]! ? -1 : 0))
    return order
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
    if (this.quantized !== undefined) {
      const quantized = new Int8Array(next * this.dimensions)
      quantized.set(this.quantized)
      this.quantized = quantized
    }
    const searchable = new Uint8Array(next)
    searchable.set(this.searchable)
    this.searchable = searchable
  }
}
