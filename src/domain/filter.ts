/**
 * Filters: what a source's `where` means, in one place (README "Filters"). `parseFilter` turns a
 * `where` into a `Filter` (a small tree) or a typed error naming the path of what is wrong;
 * `matches` tests an entry against it. The warm index and the compile's re-check call `matches`;
 * the SQL stores translate the same tree (`stores/sql/filterSql.ts`). Pure: no effects.
 *
 * - `{ field: scalar }` is equality; `{ field: { $op: operand, … } }` applies each operator; the
 *   keys of one object all hold (and). `$and`/`$or` take non-empty arrays of filters, `$not` a
 *   filter. `$since`/`$until` bound the entry's time: `since ≤ time < until`.
 * - Fields are top-level metadata keys. A field that is absent (or `undefined`) is missing: it
 *   equals nothing and compares with nothing, so `$ne`/`$nin`/`$not` match it (as in MongoDB);
 *   `$exists` tells. Unlike MongoDB, `null` equals only a field that holds null.
 * - Comparisons never cross types: a number compares with numbers, a string with strings (by code
 *   point, PostgreSQL's `COLLATE "C"`); anything else fails the comparison.
 * - Equality is strict (`"1"` is not `1`), except the image rule: `type` equal to any ASCII case of
 *   "image" matches a `type` that is any case of it (`isImageType`).
 */
import { Either } from "effect"
import { errorReason, InvalidFilter } from "./errors.js"
import { timestampMs } from "./time.js"

/** Nesting of `$and`/`$or`/`$not`, the filter itself being level 1: bounds the recursion on hostile input. */
export const MAX_FILTER_DEPTH = 8
/** Conditions in one filter (each field operator, time bound and element of `$and`/`$or`/`$not` counts one). */
export const MAX_FILTER_CONDITIONS = 64
/** Values in one `$in`/`$nin` list. */
export const MAX_FILTER_LIST = 256
/** The longest field name (as before operators). */
export const MAX_FIELD_LENGTH = 128

/** Keys a filter may not use: they would not survive JSON or would reach an object's prototype. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"])

export type Scalar = string | number | boolean | null
export type Comparison = "gt" | "gte" | "lt" | "lte"

/** A parsed filter. `$ne`, `$in`, `$nin` and `$exists: false` are written with `Not` and `Or`. */
export type Filter =
  | { readonly _tag: "And"; readonly filters: ReadonlyArray<Filter> }
  | { readonly _tag: "Or"; readonly filters: ReadonlyArray<Filter> }
  | { readonly _tag: "Not"; readonly filter: Filter }
  | { readonly _tag: "Eq"; readonly field: string; readonly value: Scalar }
  | { readonly _tag: "Compare"; readonly field: string; readonly op: Comparison; readonly value: number | string }
  | { readonly _tag: "Exists"; readonly field: string }
  | { readonly _tag: "Since"; readonly ms: number }
  | { readonly _tag: "Until"; readonly ms: number }

/** The filter every entry passes (no `where`, or `{}`). */
export const ALL: Filter = { _tag: "And", filters: [] }

export const isAll = (filter: Filter): boolean => filter._tag === "And" && filter.filters.length === 0

/** The image rule, its one home: a `type` is an image's when it is any ASCII case of "image". */
export const isImageType = (value: unknown): boolean => typeof value === "string" && value.toLowerCase() === "image"

/** Whether the filter is exactly the image query's `{ type: "image" }`. */
export const isImageFilter = (filter: Filter): boolean => filter._tag === "Eq" && filter.field === "type" && filter.value === "image"

/** A key for a filter: equal for filters that parse alike (object keys are read in sorted order). */
export const filterKey = (filter: Filter): string => JSON.stringify(filter)

const FIELD_OPERATORS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"]
const FILTER_OPERATORS = ["$and", "$or", "$not", "$since", "$until"]

/** Thrown inside the parser only; `parseFilter` returns it. */
class Refused {
  constructor(readonly error: InvalidFilter) {}
}

const refuse = (field: string, value: unknown, reason: string): never => {
  throw new Refused(new InvalidFilter({ field, value, reason }))
}

const isPlainObject = (value: unknown): value is Record<string, unknown> => {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** Text PostgreSQL can hold: no NUL, no lone surrogate. */
const storable = (text: string) => !/\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text)

const SCALAR = "must be a string, a finite number, a boolean or null"

const scalarOf = (value: unknown, path: string): Scalar => {
  if (value === null || typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value))) return value
  if (typeof value === "string") return storable(value) ? value : refuse(path, value, "must not hold NUL characters or lone surrogates")
  return refuse(path, value, SCALAR)
}

/** The object's own string keys, sorted (a filter's meaning does not depend on their order). */
const keysOf = (value: Record<string, unknown>, path: string): Array<string> => {
  const keys = Reflect.ownKeys(value)
  if (keys.length > MAX_FILTER_CONDITIONS) refuse(path, value, `has ${keys.length} keys; a filter holds at most ${MAX_FILTER_CONDITIONS} conditions`)
  for (const key of keys) if (typeof key !== "string") refuse(`${path}[${String(key)}]`, undefined, "keys must be strings")
  return keys.length > 1 ? (keys as Array<string>).sort() : (keys as Array<string>)
}

interface Budget {
  conditions: number
}

const count = (budget: Budget, path: string, value: unknown) => {
  if (++budget.conditions > MAX_FILTER_CONDITIONS) refuse(path, value, `is one condition too many: a filter holds at most ${MAX_FILTER_CONDITIONS}`)
}

const both = (filters: Array<Filter>): Filter => (filters.length === 1 ? filters[0]! : { _tag: "And", filters })

const eq = (field: string, value: Scalar): Filter => ({ _tag: "Eq", field, value: field === "type" && isImageType(value) ? "image" : value })

const not = (filter: Filter): Filter => ({ _tag: "Not", filter })

const timeOf = (value: unknown, path: string): number => {
  const ms = value === null || typeof value === "boolean" ? undefined : timestampMs(value)
  return ms ?? refuse(path, value, "must be epoch milliseconds, a date string or a Date")
}

const listOf = (value: unknown, path: string): Array<Scalar> => {
  if (!Array.isArray(value)) return refuse(path, value, "must be an array of strings, finite numbers, booleans or null")
  if (value.length > MAX_FILTER_LIST) refuse(path, value, `holds ${value.length} values; a list holds at most ${MAX_FILTER_LIST}`)
  return value.map((v, i) => scalarOf(v, `${path}[${i}]`))
}

/** One field operator applied to `field`. */
const fieldOperator = (field: string, op: string, operand: unknown, path: string): Filter => {
  switch (op) {
    case "$eq":
      return eq(field, scalarOf(operand, path))
    case "$ne":
      return not(eq(field, scalarOf(operand, path)))
    case "$gt":
    case "$gte":
    case "$lt":
    case "$lte": {
      if (!(typeof operand === "string" || (typeof operand === "number" && Number.isFinite(operand)))) {
        return refuse(path, operand, "must be a finite number or a string (comparisons never cross types)")
      }
      return { _tag: "Compare", field, op: op.slice(1) as Comparison, value: scalarOf(operand, path) as number | string }
    }
    case "$in":
      return { _tag: "Or", filters: listOf(operand, path).map((v) => eq(field, v)) }
    case "$nin":
      return not({ _tag: "Or", filters: listOf(operand, path).map((v) => eq(field, v)) })
    case "$exists":
      if (typeof operand !== "boolean") return refuse(path, operand, "must be true or false")
      return operand ? { _tag: "Exists", field } : not({ _tag: "Exists", field })
    case "$not":
      return refuse(path, operand, `is not a field operator: negate a whole filter, { $not: { ${field}: … } }`)
    default:
      return refuse(path, operand, `is not an operator (a field's: ${FIELD_OPERATORS.join(" ")})`)
  }
}

/** A field's condition: a scalar (equality) or an object of operators. */
const fieldCondition = (field: string, value: unknown, path: string, budget: Budget): Filter => {
  if (field.length > MAX_FIELD_LENGTH) refuse(path, value, `names a field longer than ${MAX_FIELD_LENGTH} characters`)
  if (FORBIDDEN_KEYS.has(field)) refuse(path, value, "is not a metadata field a filter may use")
  if (!storable(field)) refuse(path, value, "names a field with NUL characters or lone surrogates")
  if (!isPlainObject(value)) {
    count(budget, path, value)
    return eq(field, scalarOf(value, path))
  }
  const ops = keysOf(value, path)
  if (ops.length === 0) return refuse(path, value, `must hold at least one operator (${FIELD_OPERATORS.join(" ")})`)
  return both(
    ops.map((op) => {
      count(budget, `${path}.${op}`, value[op])
      return fieldOperator(field, op, value[op], `${path}.${op}`)
    })
  )
}

const filterOf = (value: unknown, path: string, depth: number, budget: Budget): Filter => {
  if (depth > MAX_FILTER_DEPTH) refuse(path, value, `nests deeper than ${MAX_FILTER_DEPTH} levels of $and, $or and $not`)
  if (!isPlainObject(value)) refuse(path, value, "must be an object of metadata fields and operators")
  const record = value as Record<string, unknown>
  const parts: Array<Filter> = []
  for (const key of keysOf(record, path)) {
    const operand = record[key]
    const at = `${path}.${key}`
    if (key === "$and" || key === "$or") {
      if (!Array.isArray(operand) || operand.length === 0) refuse(at, operand, "must be a non-empty array of filters")
      const filters = (operand as Array<unknown>).map((f, i) => {
        count(budget, `${at}[${i}]`, f)
        return filterOf(f, `${at}[${i}]`, depth + 1, budget)
      })
      parts.push(key === "$and" ? both(filters) : { _tag: "Or", filters })
    } else if (key === "$not") {
      count(budget, at, operand)
      parts.push(not(filterOf(operand, at, depth + 1, budget)))
    } else if (key === "$since" || key === "$until") {
      count(budget, at, operand)
      parts.push({ _tag: key === "$since" ? "Since" : "Until", ms: timeOf(operand, at) })
    } else if (key.startsWith("$")) {
      refuse(at, operand, `is not an operator here (a filter's: ${FILTER_OPERATORS.join(" ")}; a field's go inside the field, { field: { $gt: … } })`)
    } else if (key.length === 0) {
      refuse(at, operand, "names no field")
    } else {
      parts.push(fieldCondition(key, operand, at, budget))
    }
  }
  return both(parts)
}

/**
 * A `where` as a `Filter`, or an `InvalidFilter` whose `field` is the path of what is wrong, from
 * `path` (`where.$and[1].age.$gt`). No `where` is the filter every entry passes.
 */
export const parseFilter = (where: unknown, path = "where"): Either.Either<Filter, InvalidFilter> => {
  if (where === undefined) return Either.right(ALL)
  try {
    return Either.right(filterOf(where, path, 1, { conditions: 0 }))
  } catch (e) {
    if (e instanceof Refused) return Either.left(e.error)
    // A getter or proxy that throws, or a stack overflow: still a refused filter, not a defect.
    return Either.left(new InvalidFilter({ field: path, value: where, reason: `cannot be read (${errorReason(e)})` }))
  }
}

/** Orders strings by code point (as `COLLATE "C"` orders UTF-8), not by UTF-16 unit. */
export const compareText = (a: string, b: string): number => {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    if (a.charCodeAt(i) !== b.charCodeAt(i)) return a.codePointAt(i)! - b.codePointAt(i)!
  }
  return a.length - b.length
}

const fieldValue = (metadata: unknown, field: string): unknown =>
  metadata !== null && typeof metadata === "object" && Object.prototype.hasOwnProperty.call(metadata, field)
    ? (metadata as Record<string, unknown>)[field]
    : undefined

const compare = (actual: unknown, op: Comparison, wanted: number | string): boolean => {
  let order: number
  if (typeof wanted === "number") {
    if (typeof actual !== "number" || Number.isNaN(actual)) return false
    order = actual < wanted ? -1 : actual > wanted ? 1 : 0
  } else {
    if (typeof actual !== "string") return false
    order = compareText(actual, wanted)
  }
  return op === "gt" ? order > 0 : op === "gte" ? order >= 0 : op === "lt" ? order < 0 : order <= 0
}

/** Whether a row passes: its metadata and its time in epoch ms (undefined: it has none, and fails any time bound). */
export const matchesRow = (filter: Filter, metadata: unknown, ms: number | undefined): boolean => {
  switch (filter._tag) {
    case "And":
      return filter.filters.every((f) => matchesRow(f, metadata, ms))
    case "Or":
      return filter.filters.some((f) => matchesRow(f, metadata, ms))
    case "Not":
      return !matchesRow(filter.filter, metadata, ms)
    case "Eq": {
      const actual = fieldValue(metadata, filter.field)
      return isImageFilter(filter) ? isImageType(actual) : actual === filter.value
    }
    case "Compare":
      return compare(fieldValue(metadata, filter.field), filter.op, filter.value)
    case "Exists":
      return fieldValue(metadata, filter.field) !== undefined
    case "Since":
      return ms !== undefined && ms >= filter.ms
    case "Until":
      return ms !== undefined && ms < filter.ms
  }
}

/** Whether an entry (`{ timestamp, metadata }`, as stores return it) passes the filter. */
export const matches = (filter: Filter, entry: { readonly timestamp: unknown; readonly metadata?: unknown }): boolean =>
  isAll(filter) || matchesRow(filter, entry.metadata, timestampMs(entry.timestamp))
