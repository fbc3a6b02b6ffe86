/**
 * The analyzer: what words of a text count for lexical relevance, the same on every path (the warm
 * index in memory and PostgreSQL's full-text search, which is given these terms, never its own).
 *
 * - Text is NFKC-normalized and lower-cased; a word is a run of letters and digits (any script).
 * - English stop words are dropped; English words (ASCII letters only) are reduced to their stem by
 *   Porter2 (the `porter2` package): "painted", "paints" and "painting" meet at "paint".
 * - A run longer than `MAX_TERM_LENGTH` is not a term.
 * - Other scripts keep whole words, unstemmed; a script written without spaces (Chinese, Japanese,
 *   Thai) gives one term per run, so such text is matched by whole runs only (see README, Relevance).
 *
 * Measured on LoCoMo (docs/decisions/relevance.md): stop words +4 points of evidence recall, the
 * stemmer +4 more, over plain lower-cased words.
 */
import { stem } from "porter2"
import { isImageType } from "../domain/filter.js"

/** Longer runs are not words anyone asks about (a hash, an encoded blob), and PostgreSQL refuses lexemes of 2 KB. */
export const MAX_TERM_LENGTH = 64

/** A term's count in one document is capped here (PostgreSQL keeps at most 256 positions of a lexeme). */
export const MAX_TERM_FREQUENCY = 256

/** Common English function words: they carry no topic, and would give every entry a small score. */
export const STOP_WORDS: ReadonlySet<string> = new Set(
  ("a about above after again against all am an and any are as at be because been before being below between both but by " +
    "can could did do does doing down during each few for from further had has have having he her here hers herself him " +
    "himself his how i if in into is it its itself just me more most my myself no nor not now of off on once only or other " +
    "our ours ourselves out over own same she should so some such than that the their theirs them themselves then there " +
    "these they this those through to too under until up very was we were what when where which while who whom why will " +
    "with would you your yours yourself yourselves " +
    // What is left of contractions once the apostrophe splits them ("she's", "don't", "I'll").
    "s t d ll m re ve").split(" ")
)

const WORD = /[\p{L}\p{N}]+/gu
const ENGLISH = /^[a-z]+$/

/** The terms of a text, in order (a term may repeat). */
export const terms = (text: string): Array<string> => {
  const words = text.normalize("NFKC").toLowerCase().match(WORD) ?? []
  const out: Array<string> = []
  for (const word of words) {
    if (STOP_WORDS.has(word) || word.length > MAX_TERM_LENGTH) continue
    out.push(ENGLISH.test(word) ? stem(word) : word)
  }
  return out
}

/** Each distinct term with its count (capped at `MAX_TERM_FREQUENCY`), in first-seen order. */
export const termCounts = (list: ReadonlyArray<string>): Map<string, number> => {
  const counts = new Map<string, number>()
  for (const term of list) counts.set(term, Math.min(MAX_TERM_FREQUENCY, (counts.get(term) ?? 0) + 1))
  return counts
}

/**
 * What an entry is found by, lexically: the name of who wrote it and what it says (an image: its
 * caption). The name is part of every message the entry becomes ("Ann said …"), so a question about
 * Ann finds Ann's entries first.
 */
export const documentText = (entry: { readonly text: string; readonly metadata: Readonly<Record<string, unknown>> }): string => {
  const { displayName, name } = entry.metadata
  const author = typeof displayName === "string" ? displayName : typeof name === "string" ? name : ""
  return author.length > 0 ? `${author} ${searchText(entry)}` : searchText(entry)
}

/** What an entry is embedded and matched by: an image by its caption when it has one, anything else by its text. */
export const searchText = (entry: { readonly text: string; readonly metadata: Readonly<Record<string, unknown>> }): string => {
  const { type, caption } = entry.metadata
  return isImageType(type) && typeof caption === "string" && caption.trim() ? caption : entry.text
}

/**
 * The terms as a PostgreSQL `tsvector` literal: each term with as many positions as its count, so
 * the count survives (`array_length(positions)`); terms are letters and digits only, so quoting them
 * is enough. Parsed by the server as `::tsvector`, always as a bound parameter.
 */
export const tsvectorLiteral = (counts: ReadonlyMap<string, number>): string => {
  const parts: Array<string> = []
  for (const [term, count] of counts) {
    const positions = Array.from({ length: count }, (_, i) => i + 1).join(",")
    parts.push(`'${term}':${positions}`)
  }
  return parts.join(" ")
}

/** The document length BM25 normalizes by: the number of terms, each counted up to its cap. */
export const documentLength = (counts: ReadonlyMap<string, number>): number => {
  let n = 0
  for (const c of counts.values()) n += c
  return n
}

/** The lexical columns the SQL stores keep with an entry: its terms as a tsvector literal and its length (null for a blank text). */
export const lexicalColumns = (entry: { readonly text: string; readonly metadata: Readonly<Record<string, unknown>> }) => {
  if (entry.text.trim().length === 0) return { lexemes: null, dl: null }
  const counts = termCounts(terms(documentText(entry)))
  return { lexemes: tsvectorLiteral(counts), dl: documentLength(counts) }
}
