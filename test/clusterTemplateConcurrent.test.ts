/**
 * New embedded clusters that start together while the process's copy of a fresh one is being made
 * (`clusterTemplate.ts`): one copy is made, and the others start from it. A file of its own: the
 * copy is the process's (a test file's, under Vitest).
 */
import { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import { describe, expect, it } from "vitest"
import { PgliteClient } from "../src/stores/sql/PgliteClient.js"

/** How a new `memory://` cluster started, and the tables it holds after `table` was made in it. */
const start = (table: string) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const client = yield* PgliteClient
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe(`CREATE TABLE ${table} (id int)`)
        const tables = yield* sql<{ name: string }>`SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`
        return { startedFrom: client.pglite.startedFrom, tables: tables.map((t) => t.name) }
      }).pipe(Effect.provide(Layer.fresh(PgliteClient.layer({ dataDir: "memory://" }))))
    )
  )

describe("new embedded clusters starting together", () => {
  it("while the copy is being made, the others wait for it instead of each running initdb and making one of their own", async () => {
    expect((await start("first")).startedFrom).toBe("initdb")
    const together = await Promise.all([start("a"), start("b"), start("c")])
    // One of them is copied; the two others start from its copy.
    expect(together.map((c) => c.startedFrom).sort()).toEqual(["initdb", "template", "template"])
    // Each a cluster of its own.
    expect(together.map((c) => c.tables)).toEqual([["a"], ["b"], ["c"]])
  }, 180_000)
})
