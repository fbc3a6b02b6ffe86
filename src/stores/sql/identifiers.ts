/**
 * Names that reach SQL text. A source id becomes part of a table name, so it is checked against a
 * strict pattern before any SQL is built, and then only ever passed as an escaped identifier.
 * Filter values are always bound parameters.
 */
import { Either } from "effect"
import { InvalidFilter, InvalidSourceId } from "../../domain/errors.js"
import type { Where } from "../../domain/schemas.js"

/** Letters, digits, `_` and `-`, starting with a letter, at most 48 characters. */
export const SOURCE_ID = /^[A-Za-z][A-Za-z0-9_-]{0,47}$/

export const validateSourceId = (id: unknown): Either.Either<string, InvalidSourceId> => {
  if (typeof id !== "string") return Either.left(new InvalidSourceId({ id, reason: "must be a string" }))
  if (SOURCE_ID.test(id)) return Either.right(id)
  return Either.left(
    new InvalidSourceId({
      id,
      reason: id.length > 48 ? "is longer than 48 characters" : "must start with a letter and hold only letters, digits, '_' and '-'"
    })
  )
}

/** The table holding a source's entries (the id is valid: see `validateSourceId`). */
export const entriesTable = (id: string) => `pantheon_entries_${id}`

/** Filters are equality on metadata fields: each value a string, a finite number, a boolean or null. */
export const validateWhere = (where: Where | undefined): Either.Either<Where, InvalidFilter> => {
  if (where === undefined) return Either.right({})
  if (where === null || typeof where !== "object" || Array.isArray(where)) {
    return Either.left(new InvalidFilter({ field: "where", value: where, reason: "must be an object of metadata fields" }))
  }
  for (const [field, value] of Object.entries(where)) {
    if (field.length === 0 || field.length > 128) return Either.left(new InvalidFilter({ field, value, reason: "field names must be 1 to 128 characters" }))
    const ok = value === null || typeof value === "string" || typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value))
    if (!ok) return Either.left(new InvalidFilter({ field, value, reason: "values must be strings, finite numbers, booleans or null" }))
  }
  return Either.right(where)
}
