/**
 * The lexical half of a warm index: an inverted index of the analyzer's terms (src/relevance), kept
 * row by row as the vectors are, scoring a question with BM25 exactly as the SQL statement does
 * (the same terms, counts, document lengths and statistics over the source's searchable rows).
 */
import { documentLength, termCounts } from "../../../relevance/analyzer.js"
import { idf, termScore } from "../../../relevance/scoring.js"

/** Bytes of one posting (a row number in a JS array) and of a row's term list (id + count), estimated. */
const POSTING_BYTES = 8
const ROW_TERM_BYTES = 6
/** A typed array's own object, and a dictionary entry's Map slot and string header (V8, 64-bit). */
const ARRAY_OVERHEAD_BYTES = 64
const TERM_OVERHEAD_BYTES = 48

export class LexicalIndex {
  private readonly termIds = new Map<string, number>()
  private readonly termBytes: Array<number> = []
  private readonly postings: Array<Array<number>> = []
  /** Per row: its terms (ids) and their counts; undefined for a row that takes no part. */
  private readonly rowTerms: Array<Int32Array | undefined> = []
  private readonly rowCounts: Array<Uint16Array | undefined> = []
  private readonly rowLength: Array<number> = []
  private documents = 0
  private totalLength = 0
  private bytesHeld = 0

  /** Rows that take part (their text is not blank). */
  get size(): number {
    return this.documents
  }

  /** What the index holds, estimated in bytes. */
  get bytes(): number {
    return this.bytesHeld
  }

  /** Sets a row's terms (undefined: the row takes no part, as a blank text). */
  set(row: number, list: ReadonlyArray<string> | undefined): void {
    this.remove(row)
    if (list === undefined) return
    const counts = termCounts(list)
    const ids = new Int32Array(counts.size)
    const tfs = new Uint16Array(counts.size)
    let i = 0
    for (const [term, count] of counts) {
      let id = this.termIds.get(term)
      if (id === undefined) {
        id = this.postings.length
        this.termIds.set(term, id)
        this.postings.push([])
        this.termBytes.push(TERM_OVERHEAD_BYTES + 2 * term.length)
        this.bytesHeld += TERM_OVERHEAD_BYTES + 2 * term.length
      }
      this.postings[id]!.push(row)
      ids[i] = id
      tfs[i++] = count
    }
    const length = documentLength(counts)
    this.rowTerms[row] = ids
    this.rowCounts[row] = tfs
    this.rowLength[row] = length
    this.documents++
    this.totalLength += length
    this.bytesHeld += 2 * ARRAY_OVERHEAD_BYTES + counts.size * (ROW_TERM_BYTES + POSTING_BYTES)
  }

  /**
   * BM25 of every row that holds one of `question`'s distinct terms (statistics over all searchable
   * rows), added into `scores` (by row); returns those rows. The sum runs over the question's terms
   * in the order given, as the SQL statement sums them.
   */
  scoreInto(question: ReadonlyArray<string>, scores: Float64Array): Array<number> {
    const rows: Array<number> = []
    if (this.documents === 0) return rows
    const average = this.totalLength / this.documents
    for (const term of new Set(question)) {
      const id = this.termIds.get(term)
      if (id === undefined) continue
      const postings = this.postings[id]!
      const weight = idf(this.documents, postings.length)
      for (const row of postings) {
        const at = this.rowTerms[row]!.indexOf(id)
        const tf = this.rowCounts[row]![at]!
        if (scores[row] === 0) rows.push(row)
        scores[row] = scores[row]! + termScore(weight, tf, this.rowLength[row]!, average)
      }
    }
    return rows
  }

  private remove(row: number): void {
    const ids = this.rowTerms[row]
    if (ids === undefined) return
    for (const id of ids) {
      const rows = this.postings[id]!
      const at = rows.lastIndexOf(row)
      if (at >= 0) rows.splice(at, 1)
    }
    this.documents--
    this.totalLength -= this.rowLength[row]!
    this.bytesHeld -= 2 * ARRAY_OVERHEAD_BYTES + ids.length * (ROW_TERM_BYTES + POSTING_BYTES)
    this.rowTerms[row] = undefined
    this.rowCounts[row] = undefined
    this.rowLength[row] = 0
  }
}
