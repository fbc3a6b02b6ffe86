/**
 * The SQL catalog (`pantheon_sources`): reading it, registering and removing sources. A removed
 * source's row and entries stay (registering the id again brings them back); only the catalog
 * hides it.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Schema } from "effect"
import { CatalogUnavailable, StoreUnavailable } from "../../domain/errors.js"
import type { StoreDescriptor } from "../../domain/schemas.js"
import { RowNumber } from "./rows.js"
import { createEntriesTable, type VectorMode } from "./storage.js"

/** A SQL source in the catalog: where its entries live and how its vectors were made. */
export interface SqlSourceDescriptor extends StoreDescriptor {
  readonly storage: number
  readonly dimensions: number
  readonly vectorMode: VectorMode
}

const SourceRow = Schema.Struct({
  id: Schema.String,
  label: Schema.NullOr(Schema.String),
  version: RowNumber,
  storage: RowNumber,
  dimensions: RowNumber,
  vector_mode: Schema.Literal("pgvector", "array")
})
type SourceRow = typeof SourceRow.Type

const toDescriptor = (row: SourceRow): SqlSourceDescriptor => ({
  id: row.id,
  ...(row.label === null ? {} : { label: row.label }),
  fingerprint: String(row.version),
  storage: row.storage,
  dimensions: row.dimensions,
  vectorMode: row.vector_mode
})

const decodeRows = Schema.decodeUnknown(Schema.Array(SourceRow))

/** The registered sources, oldest first. */
export const readCatalog = (sql: SqlClient.SqlClient) =>
  sql`SELECT id, label, version, storage, dimensions, vector_mode FROM pantheon_sources WHERE NOT removed ORDER BY created_at, id`.pipe(
    Effect.flatMap(decodeRows),
    Effect.map((rows) => rows.map(toDescriptor)),
    Effect.mapError(CatalogUnavailable.failed("reading pantheon_sources")),
    Effect.withSpan("SqlCatalog.read")
  )

export interface Registration {
  readonly descriptor: SqlSourceDescriptor
  /** The row is new; else it changed (label, or brought back), or nothing changed. */
  readonly outcome: "added" | "changed" | "unchanged"
}

/**
 * Registers `id` (or updates its label, or brings it back), creating its storage when new: one
 * transaction, so concurrent registrations of one id wait for each other and all succeed.
 */
export const register = (sql: SqlClient.SqlClient, id: string, label: string | null, dimensions: number, mode: VectorMode) =>
  sql
    .withTransaction(
      Effect.gen(function* () {
        const rows = yield* sql<SourceRow & { inserted: boolean }>`
          INSERT INTO pantheon_sources (id, label, dimensions, vector_mode, created_at)
          VALUES (${id}, ${label}, ${dimensions}, ${mode}, ${Date.now()})
          ON CONFLICT (id) DO UPDATE SET label = excluded.label, removed = false, version = pantheon_sources.version + 1
            WHERE pantheon_sources.label IS DISTINCT FROM excluded.label OR pantheon_sources.removed
          RETURNING id, label, version, storage, dimensions, vector_mode, (xmax = 0) AS inserted`
        const changed = rows[0]
        if (changed === undefined) {
          const [row] = yield* Effect.flatMap(sql`SELECT id, label, version, storage, dimensions, vector_mode FROM pantheon_sources WHERE id = ${id}`, decodeRows)
          return { descriptor: toDescriptor(row!), outcome: "unchanged" } satisfies Registration
        }
        const [row] = yield* decodeRows([changed])
        const descriptor = toDescriptor(row!)
        if (changed.inserted) yield* createEntriesTable(sql, descriptor.storage, mode, dimensions)
        return { descriptor, outcome: changed.inserted ? "added" : "changed" } satisfies Registration
      })
    )
    .pipe(Effect.mapError(StoreUnavailable.failed(id, "registering it")))

/** Hides a source from the catalog; true if it was listed. */
export const remove = (sql: SqlClient.SqlClient, id: string) =>
  sql`UPDATE pantheon_sources SET removed = true, version = version + 1 WHERE id = ${id} AND NOT removed RETURNING id`.pipe(
    Effect.map((rows) => rows.length > 0),
    Effect.mapError(StoreUnavailable.failed(id, "removing it"))
  )
