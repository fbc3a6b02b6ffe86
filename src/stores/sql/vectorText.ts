/** Vectors as PostgreSQL text: `[…]` for pgvector's `vector`, `{…}` for `real[]`. */
import type { VectorMode } from "./storage.js"

/** A vector as SQL text, 9 significant digits (a float32 round-trips). */
export const vectorLiteral = (mode: VectorMode, v: Float32Array): string => {
  const digits = Array.from(v, (x) => (x === 0 ? "0" : x.toPrecision(9))).join(",")
  return mode === "pgvector" ? `[${digits}]` : `{${digits}}`
}

/**
 * Parses `[a,b,…]` or `{a,b,…}` into `out` at `offset`, without splitting into substrings arrays;
 * returns how many numbers it read (the caller checks it against the dimensions).
 */
export const parseVector = (text: string, out: Float32Array, offset: number): number => {
  let n = 0
  let start = 1
  for (let i = 1; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 44 /* , */ || c === 93 /* ] */ || c === 125 /* } */) {
      if (i > start) out[offset + n++] = Number(text.slice(start, i))
      start = i + 1
    }
  }
  return n
}
