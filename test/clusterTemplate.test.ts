/**
 * New embedded clusters after a process's second start from the copy of a fresh one
 * (`clusterTemplate.ts`): each is still a cluster of its own, empty, with the vector extension and
 * data checksums, in memory and in a new directory. Its own file: the copy is the process's (a
 * test file's, under Vitest), so the order of these tests is the order of the process's clusters.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { PgliteClient } from "../src/stores/sql/PgliteClient.js"

const dir = mkdtempSync(join(tmpdir(), "pantheon-template-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** What a cluster says of itself, after `use` ran on it. */
const inspect = <A>(dataDir: string, use: Effect.Effect<A, unknown, SqlClient.SqlClient> = Effect.void as never) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const client = yield* PgliteClient
        const sql = yield* SqlClient.SqlClient
        const tablesBefore = yield* sql<{ name: string }>`SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`
        yield* use
        const extensions = yield* sql<{ name: string }>`SELECT extname AS name FROM pg_extension ORDER BY 1`
        const [checksums] = yield* sql<{ data_checksums: string }>`SHOW data_checksums`
        return { startedFrom: client.pglite.startedFrom, tables: tablesBefore.map((t) => t.name), extensions: extensions.map((e) => e.name), checksums: checksums!.data_checksums }
      }).pipe(Effect.provide(Layer.fresh(PgliteClient.layer({ dataDir }))))
    )
  )

const write = (table: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`CREATE TABLE ${table} (id int PRIMARY KEY, v vector(3))`)
    yield* sql.unsafe(`INSERT INTO ${table} VALUES (1, '[1,2,3]')`)
  })

describe("new embedded clusters of a process", () => {
  it("the first and the next one in memory run initdb; the later ones start from the copy of that one, taken before it was written to", async () => {
    const first = await inspect("memory://", write("first_store"))
    // A directory is never the one copied: its files hold the store's lock.
    const directory = await inspect(join(dir, "second"), write("directory_store"))
    const copied = await inspect("memory://", write("copied_store"))
    const fourth = await inspect("memory://", write("fourth_store"))
    const fifth = await inspect("memory://")
    expect([first, directory, copied, fourth, fifth].map((c) => c.startedFrom)).toEqual(["initdb", "initdb", "initdb", "template", "template"])
    for (const cluster of [first, directory, copied, fourth, fifth]) {
      // Every one empty when it starts, with the extension and data checksums.
      expect(cluster.tables).toEqual([])
      expect(cluster.extensions).toContain("vector")
      expect(cluster.checksums).toBe("on")
    }
    // Five starts, three of them by initdb (4-9 s each on a loaded 2-core machine).
  }, 180_000)

  it("a new directory starts from the copy, keeps what is written, and opens as itself after", async () => {
    const dataDir = join(dir, "store")
    const made = await inspect(dataDir, write("kept"))
    expect(made).toMatchObject({ startedFrom: "template", tables: [], checksums: "on" })
    // Its own lock, let go when it closed (a copy of a directory would have brought another store's).
    expect(existsSync(join(dataDir, "pantheon.lock"))).toBe(false)
    const rows = Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      return yield* sql<{ id: number; v: string }>`SELECT id, v::text AS v FROM kept`
    })
    const reopened = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const client = yield* PgliteClient
          return { startedFrom: client.pglite.startedFrom, rows: yield* rows }
        }).pipe(Effect.provide(Layer.fresh(PgliteClient.layer({ dataDir }))))
      )
    )
    expect(reopened).toEqual({ startedFrom: "existing", rows: [{ id: 1, v: "[1,2,3]" }] })
  }, 120_000)
})
