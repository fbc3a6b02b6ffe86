/**
 * PGlite runs on a worker thread: while it works, this thread's event loop keeps turning; its
 * failures arrive as the same typed errors; a worker that dies or stops answering fails every call
 * with a message saying so, never a hang. The statement that never ends is a recursive query
 * without a stop, so nothing here depends on how fast the machine is.
 */
import { SqlError } from "@effect/sql/SqlError"
import * as SqlClient from "@effect/sql/SqlClient"
import { type Duration, Effect, Either } from "effect"
import { describe, expect, it } from "vitest"
import { PgliteClient } from "../../src/stores/sql/PgliteClient.js"

/** Never ends: counts the rows of an endless recursion. */
const FOREVER = "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t"

const withClient = <A, E>(effect: Effect.Effect<A, E, PgliteClient | SqlClient.SqlClient>, options: { readonly callTimeout?: Duration.DurationInput } = {}) =>
  Effect.runPromise(Effect.scoped(Effect.provide(effect, PgliteClient.layer({ dataDir: "memory://", ...options }))))

/** `n` turns of the event loop (setImmediate): they never come while something holds the thread. */
const turns = (n: number) => Effect.promise(async () => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r))
})

describe("PGlite on a worker thread", () => {
  it("answers rows as before, and a statement's failure is a SqlError with PostgreSQL's message and code", async () => {
    const result = await withClient(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const client = yield* PgliteClient
        const counted = yield* sql<{ n: number; at: Date; doc: unknown }>`SELECT count(*)::int AS n, now() AS at, '{"a":[1,2]}'::jsonb AS doc FROM generate_series(1, ${1000})`
        const failed = yield* Effect.either(sql.unsafe("SELEC 1"))
        return { counted, failed, closed: client.pglite.closed }
      })
    )
    expect(result.counted[0]!.n).toBe(1000)
    expect(result.counted[0]!.at).toBeInstanceOf(Date)
    expect(result.counted[0]!.doc).toEqual({ a: [1, 2] })
    expect(Either.isLeft(result.failed)).toBe(true)
    const error = (result.failed as Either.Left<SqlError, unknown>).left
    expect(error).toBeInstanceOf(SqlError)
    expect(error.message).toMatch(/syntax error at or near "SELEC"/)
    expect((error.cause as { code?: string }).code).toBe("42601")
    expect(result.closed).toBe(false)
  }, 120_000)

  it("the event loop turns while a statement that never ends runs; a worker that dies fails it and every later one with a SqlError saying so", async () => {
    const result = await withClient(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const client = yield* PgliteClient
        const running = yield* Effect.fork(Effect.either(sql.unsafe(FOREVER)))
        // PGlite on this thread never gave the loop a turn until its statement ended (this one never does).
        yield* turns(100)
        yield* Effect.promise(() => client.pglite.terminate())
        const first = yield* running.await
        const later = yield* Effect.either(sql`SELECT 1`)
        return { first, later, closed: client.pglite.closed }
      })
    )
    const first = result.first._tag === "Success" ? result.first.value : undefined
    expect(first !== undefined && Either.isLeft(first) && first.left instanceof SqlError).toBe(true)
    expect(String((first as Either.Left<SqlError, unknown>).left.message)).toMatch(/the embedded database's worker was stopped/)
    expect(Either.isLeft(result.later) && result.later.left instanceof SqlError && /worker was stopped/.test(result.later.left.message)).toBe(true)
    expect(result.closed).toBe(true)
  }, 120_000)

  it("a statement past callTimeout stops the worker: that call and the next fail with a SqlError naming the deadline", async () => {
    const result = await withClient(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const stuck = yield* Effect.either(sql.unsafe(FOREVER))
        const later = yield* Effect.either(sql`SELECT 1`)
        return { stuck, later }
      }),
      { callTimeout: "300 millis" }
    )
    for (const outcome of [result.stuck, result.later]) {
      expect(Either.isLeft(outcome)).toBe(true)
      const error = (outcome as Either.Left<SqlError, unknown>).left
      expect(error).toBeInstanceOf(SqlError)
      expect(error.message).toMatch(/did not answer a query within 0\.3 s: its worker was stopped/)
    }
  }, 120_000)
})
