/**
 * What reaches SQL from callers. Source ids never reach SQL text: a source's entries live in a table
 * named by a number the catalog assigns (`storage.ts`), and ids are bound parameters. They are
 * still checked, so that ids stay readable in logs, file names and the command line. Filter field
 * names and operands are bound parameters too (`filterSql.ts`), checked by `parseFilter`.
 */
import { Either } from "effect"
import type { InvalidFilter } from "../../domain/errors.js"
import { InvalidSourceId } from "../../domain/errors.js"
import { type Filter, parseFilter } from "../../domain/filter.js"
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

/** A filter, parsed and checked by the filter module (domain/filter.ts): the one definition of what a `where` may be. */
export const validateWhere = (where: Where | undefined): Either.Either<Filter, InvalidFilter> => parseFilter(where)
