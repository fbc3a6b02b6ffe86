/**
 * The lexical half of a warm index: an inverted index of the analyzer's terms (src/relevance), kept
 * row by row as the vectors are, scoring a question with BM25 exactly as the SQL statement does
 * (the same terms, counts, document lengths and statistics over the source's searchable rows).
 *
 * A term's postings are two typed arrays side by side (rows, and the term's count in each), so a
 * question's score is one pass over each of its terms' postings with no lookup inside a row; each
 * row's BM25 length term is computed once per change of the statistics, not once per posting.
 */
import { documentLength, termCounts } from "../../../relevance/analyzer.js"
import { idf, lengthNorm, normedTermScore } from "../../../relevance/scoring.js"

/** Bytes of one posting slot (a row number and a count) and of one term of a row's list (a term id). */
const POSTING_BYTES = 6
const ROW_TERM_BYTES = 4
/** Posting slots a new term starts with (doubled when full). */
const FIRST_SLOTS = 4
/** A typed array's own object, and a dictionary entry's Map slot and string header (V8, 64-bit). */
const ARRAY_OVERHEAD_BYTES = 64
const TERM_OVERHEAD_BYTES = 48

/** One term's postings: `rows[i]` holds the term `counts[i]` times; the first `length` slots are used. */
interface Postings {
  rows: Int32Array
  counts: Uint16Array
  length: number
}

const emptyPostings = (): Postings => ({ rows: new Int32Array(FIRST_SLOTS), counts: new Uint16Array(FIRST_SLOTS), length: 0 })

/** Appends a posting; returns the slots added (0, or the doubling when it was full). */
const append = (postings: Postings, row: number, count: number): number => {
  let added = 0
  if (postings.length === postings.rows.length) {
    added = postings.rows.length
    const rows = new Int32Array(postings.rows.length * 2)
    rows.set(postings.rows)
    const counts = new Uint16Array(postings.counts.length * 2)
    counts.set(postings.counts)
    postings.rows = rows
    postings.counts = counts
  }
  postings.rows[postings.length] = row
  postings.counts[postings.length++] = count
  return added
}

/** Removes `row` (searching from the end: a rewritten row is usually recent), keeping the order of the others. */
const removeRow = (postings: Postings, row: number): void => {
  for (let i = postings.length - 1; i >= 0; i--) {
    if (postings.rows[i] !== row) continue
    postings.rows.copyWithin(i, i + 1, postings.length)
    postings.counts.copyWithin(i, i + 1, postings.length)
    postings.length--
    return
  }
}

export class LexicalIndex {
  private readonly termIds = new Map<string, number>()
  private readonly postings: Array<Postings> = []
  /** Per row: its distinct terms (ids); undefined for a row that takes no part. */
  private readonly rowTerms: Array<Int32Array | undefined> = []
  private readonly rowLength: Array<number> = []
  private documents = 0
  private totalLength = 0
  private bytesHeld = 0
  /** Each row's `lengthNorm` for the current statistics; undefined after a change. */
  private norms: Float64Array | undefined

  /** Rows that take part (their text is not blank). */
  get size(): number {
    return this.documents
  }

  /** What the index holds, estimated in bytes (posting slots as allocated, freed ones included). */
  get bytes(): number {
    return this.bytesHeld + (this.norms?.byteLength ?? 0)
  }

  /** Sets a row's terms (undefined: the row takes no part, as a blank text). */
  set(row: number, list: ReadonlyArray<string> | undefined): void {
    this.remove(row)
    if (list === undefined) return
    const counts = termCounts(list)
    const ids = new Int32Array(counts.size)
    let i = 0
    for (const [term, count] of counts) {
      let id = this.termIds.get(term)
      if (id === undefined) {
        id = this.postings.length
        this.termIds.set(term, id)
        this.postings.push(emptyPostings())
        this.bytesHeld += TERM_OVERHEAD_BYTES + 2 * term.length + 2 * ARRAY_OVERHEAD_BYTES + FIRST_SLOTS * POSTING_BYTES
      }
      this.bytesHeld += append(this.postings[id]!, row, count) * POSTING_BYTES
      ids[i++] = id
    }
    const length = documentLength(counts)
    this.rowTerms[row] = ids
    this.rowLength[row] = length
    this.documents++
    this.totalLength += length
    this.norms = undefined
    this.bytesHeld += ARRAY_OVERHEAD_BYTES + counts.size * ROW_TERM_BYTES
  }

  /**
   * BM25 of every row that holds one of `question`'s distinct terms (statistics over all searchable
   * rows), added into `scores` (by row); returns those rows. The sum runs over the question's terms
   * in the order given, as the SQL statement sums them.
   */
  scoreInto(question: ReadonlyArray<string>, scores: Float64Array): Array<number> {
    const rows: Array<number> = []
    if (this.documents === 0) return rows
    const norms = (this.norms ??= this.lengthNorms())
    for (const term of new Set(question)) {
      const id = this.termIds.get(term)
      if (id === undefined) continue
      const postings = this.postings[id]!
      const weight = idf(this.documents, postings.length)
      const { rows: held, counts } = postings
      for (let i = 0; i < postings.length; i++) {
        const row = held[i]!
        if (scores[row] === 0) rows.push(row)
        scores[row] = scores[row]! + normedTermScore(weight, counts[i]!, norms[row]!)
      }
    }
    return rows
  }

  private lengthNorms(): Float64Array {
    const average = this.totalLength / this.documents
    const norms = new Float64Array(this.rowLength.length)
    for (let row = 0; row < norms.length; row++) if (this.rowTerms[row] !== undefined) norms[row] = lengthNorm(this.rowLength[row]!, average)
    return norms
  }

  private remove(row: number): void {
    const ids = this.rowTerms[row]
    if (ids === undefined) return
    for (const id of ids) removeRow(this.postings[id]!, row)
    this.documents--
    this.totalLength -= this.rowLength[row]!
    this.bytesHeld -= ARRAY_OVERHEAD_BYTES + ids.length * ROW_TERM_BYTES
    this.rowTerms[row] = undefined
    this.rowLength[row] = 0
    this.norms = undefined
  }
}
