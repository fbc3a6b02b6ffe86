/**
 * A `Filter` (domain/filter.ts) as a SQL condition on an entries table aliased `e`, with every
 * operand and field name a bound parameter. It means what `matches` means, row for row (a property
 * test holds the two, PGlite and the server to the same answers):
 *
 * - every condition is true or false, never NULL, so `NOT` and `OR` keep their meaning on a
 *   missing field;
 * - equality is JSON containment (numbers compare as numbers, the GIN index serves it); the image
 *   rule lowers `type` in the "C" collation, which changes ASCII letters only, as `isImageType`;
 * - a comparison holds only for a field of the operand's JSON type, checked before the cast (in a
 *   `CASE`: PostgreSQL does not promise to evaluate `AND` left to right): numbers as `numeric`,
 *   strings in the "C" collation (code point order);
 * - time bounds compare `ts` (whole milliseconds) with the bound rounded up, which is exact for
 *   whole timestamps (`ts >= x` ⇔ `ts >= ⌈x⌉`, `ts < x` ⇔ `ts < ⌈x⌉`) and keeps the index usable.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as Statement from "@effect/sql/Statement"
import { type Comparison, type Filter, isImageFilter } from "../../domain/filter.js"

const OPERATOR: Record<Comparison, string> = { gt: ">", gte: ">=", lt: "<", lte: "<=" }

export const filterSql = (sql: SqlClient.SqlClient, filter: Filter): Statement.Fragment => {
  const of = (f: Filter): Statement.Fragment => {
    switch (f._tag) {
      case "And":
        return f.filters.length === 0 ? sql.literal("TRUE") : sql.join(" AND ", true)(f.filters.map(of))
      case "Or":
        return f.filters.length === 0 ? sql.literal("FALSE") : sql.join(" OR ", true)(f.filters.map(of))
      case "Not":
        return sql`(NOT ${of(f.filter)})`
      case "Eq":
        return isImageFilter(f)
          ? sql`coalesce(lower((e.metadata->>'type') COLLATE "C") = 'image', false)`
          : sql`(e.metadata @> ${JSON.stringify({ [f.field]: f.value })}::jsonb)`
      case "Compare": {
        const op = sql.literal(OPERATOR[f.op])
        return typeof f.value === "number"
          ? sql`(CASE WHEN jsonb_typeof(e.metadata->${f.field}::text) = 'number' THEN (e.metadata->>${f.field}::text)::numeric ${op} ${String(f.value)}::numeric ELSE false END)`
          : sql`(CASE WHEN jsonb_typeof(e.metadata->${f.field}::text) = 'string' THEN (e.metadata->>${f.field}::text) COLLATE "C" ${op} ${f.value}::text ELSE false END)`
      }
      case "Exists":
        return sql`(e.metadata->${f.field}::text IS NOT NULL)`
      case "Since":
        return sql`(e.ts >= ${String(Math.ceil(f.ms))}::bigint)`
      case "Until":
        return sql`(e.ts < ${String(Math.ceil(f.ms))}::bigint)`
    }
  }
  return of(filter)
}
