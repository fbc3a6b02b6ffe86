/**
 * Numbers as the PostgreSQL clients hand them back, decoded in one place: a number, a numeric
 * string (`pg` returns `bigint` and `numeric` columns, and `count(*)`, as strings) or a JavaScript
 * `bigint` (PGlite's `int8`). The values this project keeps there (times in epoch ms, sequence and
 * storage numbers, counts) stay far below 2^53.
 */
import { Schema } from "effect"

/** A number column, for rows decoded with Schema (a value that is no number fails the decode). */
export const RowNumber = Schema.Union(
  Schema.Number,
  Schema.NumberFromString,
  Schema.BigIntFromSelf.pipe(Schema.transform(Schema.Number, { decode: Number, encode: BigInt }))
)

/** A number column of a row read without Schema (the hot reads: a warm manager's, one value a statement). */
export const rowNumber = (value: unknown): number => (typeof value === "number" ? value : Number(value))
