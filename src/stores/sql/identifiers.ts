/**
 * What reaches SQL from callers. Source ids never reach SQL text: a source's entries live in a table
 * named by a number the catalog assigns (`storage.ts`), and ids are bound parameters. They are
 * still checked, so that ids stay readable in logs, file names and the command line. Filter keys
 * and values are bound parameters too (JSON containment); keys and values are checked here.
 */
import { Either } from "effect"
import { InvalidFilter, InvalidSourceId } from "../../domain/errors.js"
import type { Where } from "../../domain/schemas.js"

/** The longest source id a SQL store accepts. */
export const MAX_SOURCE_ID_LENGTH = 128

/** Letters, digits, `_` and `-`, starting with a letter, at most 128 characters. */
export const SOURCE_ID = /^[A-Za-z][A-Za-z0-9_-]{0,127}$/

export const validateSourceId = (id: unknown): Either.Either<string, InvalidSourceId> => {
  if (typeof id !== "string") return Either.left(new InvalidSourceId({ id, reason: "must be a string" }))
  if (SOURCE_ID.test(id)) return Either.right(id)
  return Either.left(
    new InvalidSourceId({
      id,
      reason:
        id.length > MAX_SOURCE_ID_LENGTH
          ? `is longer than ${MAX_SOURCE_ID_LENGTH} characters (${id.length})`
          : "must start with a letter and hold only letters, digits, '_' and '-'"
    })
  )
}

/** Keys a filter may not use: they would not survive JSON or would reach an object's prototype. */
const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"])

/** Filters are equality on metadata fields: each value a string, a finite number, a boolean or null. */
export const validateWhere = (where: Where | undefined): Either.Either<Where, InvalidFilter> => {
  if (where === undefined) return Either.right({})
  if (where === null || typeof where !== "object" || Array.isArray(where)) {
    return Either.left(new InvalidFilter({ field: "where", value: where, reason: "must be an object of metadata fields" }))
  }
  for (const field of Reflect.ownKeys(where)) {
    if (typeof field !== "string") return Either.left(new InvalidFilter({ field: String(field), value: undefined, reason: "field names must be strings" }))
    const value = (where as Record<string, unknown>)[field]
    if (field.length === 0 || field.length > 128) return Either.left(new InvalidFilter({ field, value, reason: "field names must be 1 to 128 characters" }))
    if (FORBIDDEN_KEYS.has(field)) return Either.left(new InvalidFilter({ field, value, reason: "is not a field name a filter may use" }))
    const ok = value === null || typeof value === "string" || typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value))
    if (!ok) return Either.left(new InvalidFilter({ field, value, reason: "values must be strings, finite numbers, booleans or null" }))
  }
  return Either.right(where)
}
