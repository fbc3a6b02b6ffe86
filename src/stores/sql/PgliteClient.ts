/**
 * An `@effect/sql` `SqlClient` over PGlite (in-process Postgres, with pgvector), shaped like
 * `@effect/sql-pg`'s `PgClient`: `make(options)` acquires the database with `acquireRelease`
 * (closed when the layer's scope closes), and `PgliteClient.layer(options)` provides it.
 * The SQL compiler is `@effect/sql-pg`'s, so one SQL code path serves PGlite and a PostgreSQL server.
 *
 * PGlite has one connection. Queries are serialized by a semaphore, and a transaction holds the
 * semaphore until it ends, so another fiber's query never runs inside someone else's transaction.
 * One instance per data directory per process: building the layer twice on one directory shares it.
 * One process per data directory: the directory is locked while it is open (`DataDirLock.ts`).
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import type { PGlite } from "@electric-sql/pglite"
import { resolve } from "node:path"
import { Context, Duration, Effect, Layer, Stream } from "effect"
import * as DataDirLock from "./DataDirLock.js"

export interface PgliteClientConfig {
  /** A directory for the data, or "memory://" (the default) for an in-memory database. */
  readonly dataDir?: string
  /** Longest the database may take to start (default 60 s). */
  readonly startTimeout?: Duration.DurationInput
  /**
   * How long to wait for another process to let go of the data directory (default 0: fail at once
   * with `DataDirUnavailable` naming the process that holds it).
   */
  readonly lockTimeout?: Duration.DurationInput
}

/**
 * The PGlite instance underneath, typed by the members this project relies on: PGlite's own
 * declarations need `@types/emscripten`, and would break a consumer that checks libraries' types.
 */
export interface PgliteDatabase {
  readonly closed: boolean
  readonly query: <T>(sql: string, params?: Array<unknown>) => Promise<{ readonly rows: Array<T> }>
  readonly exec: (sql: string) => Promise<ReadonlyArray<{ readonly rows: ReadonlyArray<unknown> }>>
}

export interface PgliteClientShape extends SqlClient.SqlClient {
  readonly dataDir: string
  readonly pglite: PgliteDatabase
}

const MEMORY = "memory://"

/**
 * Process-wide: one PGlite per data directory, shared (with the semaphore that serializes its one
 * connection) and closed with its last user; the directory's lock (`DataDirLock`) is taken before
 * PGlite touches it and let go after it is closed.
 */
interface Shared {
  ready: Promise<PGlite>
  users: number
  readonly semaphore: Effect.Semaphore
  unlock?: () => void
}
const open = new Map<string, Shared>()

const acquirePglite = (dataDir: string, startTimeout: Duration.DurationInput, lockTimeout: Duration.DurationInput) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => {
        const onDisk = dataDir !== MEMORY && !dataDir.includes("://")
        const key = dataDir === MEMORY ? undefined : onDisk ? resolve(dataDir) : dataDir
        const shared = key === undefined ? undefined : open.get(key)
        if (shared) {
          shared.users++
          return shared.ready.then((db) => ({ db, shared, key }))
        }
        const entry: Shared = { ready: Promise.resolve(undefined as never), users: 1, semaphore: Effect.unsafeMakeSemaphore(1) }
        entry.ready = (async () => {
          if (onDisk) entry.unlock = await DataDirLock.lock(dataDir, Duration.toMillis(Duration.decode(lockTimeout)))
          try {
            // Loaded here, not at import: a program that never opens an embedded store never loads PGlite.
            const [{ PGlite }, { vector }] = await Promise.all([import("@electric-sql/pglite"), import("@electric-sql/pglite-pgvector")])
            const db = await PGlite.create({ dataDir, extensions: { vector } })
            await db.exec("CREATE EXTENSION IF NOT EXISTS vector")
            return db
          } catch (e) {
            entry.unlock?.()
            throw e
          }
        })()
        if (key !== undefined) {
          open.set(key, entry)
          // Never cache a failed start.
          entry.ready.catch(() => open.get(key) === entry && open.delete(key))
        }
        return entry.ready.then((db) => ({ db, shared: entry, key }))
      },
      catch: (cause) =>
        cause instanceof DataDirLock.DataDirUnavailable
          ? cause
          : new SqlError({ cause, message: `PGlite: failed to open ${dataDir}: ${cause instanceof Error ? cause.message : String(cause)}` })
    }).pipe(
      Effect.timeoutFail({
        duration: startTimeout,
        onTimeout: () => new SqlError({ cause: new Error("timeout"), message: `PGlite: ${dataDir} did not start within ${Duration.format(Duration.decode(startTimeout))}` })
      })
    ),
    ({ db, shared, key }) =>
      Effect.promise(async () => {
        if (--shared.users > 0) return
        if (key !== undefined && open.get(key) === shared) open.delete(key)
        await db.close()
        shared.unlock?.()
      })
  )

export const make = (options: PgliteClientConfig = {}) =>
  Effect.gen(function* () {
    const dataDir = options.dataDir ?? MEMORY
    const { db, shared } = yield* acquirePglite(dataDir, options.startTimeout ?? Duration.seconds(60), options.lockTimeout ?? 0)
    const lock = shared.semaphore
    // @effect/sql-pg (and pg under it) only once an embedded store opens: its compiler is the one we use.
    const compiler = (yield* Effect.promise(() => import("@effect/sql-pg/PgClient"))).makeCompiler()

    const failed = (cause: unknown) =>
      new SqlError({ cause, message: `Failed to execute statement: ${cause instanceof Error ? cause.message : String(cause)}` })

    const connection = (locked: boolean): Connection => {
      const guard = <A>(effect: Effect.Effect<A, SqlError>) => (locked ? effect : lock.withPermits(1)(effect))
      const run = (sql: string, params: ReadonlyArray<unknown>) =>
        guard(Effect.tryPromise({ try: () => db.query<any>(sql, params as Array<unknown>), catch: failed }))
      return {
        execute: (sql, params, transformRows) =>
          Effect.map(run(sql, params), (r) => (transformRows ? transformRows(r.rows) : r.rows)),
        executeRaw: (sql, params) => run(sql, params),
        executeValues: (sql, params) =>
          guard(
            Effect.tryPromise({ try: () => db.query<Array<unknown>>(sql, params as Array<unknown>, { rowMode: "array" }), catch: failed })
          ).pipe(Effect.map((r) => r.rows)),
        executeUnprepared: (sql, params, transformRows) =>
          params.length > 0
            ? Effect.map(run(sql, params), (r) => (transformRows ? transformRows(r.rows) : r.rows))
            : guard(Effect.tryPromise({ try: () => db.exec(sql), catch: failed })).pipe(
                Effect.map((results) => {
                  const rows = results.at(-1)?.rows ?? []
                  return transformRows ? transformRows(rows as Array<object>) : rows
                })
              ),
        executeStream: (sql, params, transformRows) =>
          Stream.fromIterableEffect(Effect.map(run(sql, params), (r) => (transformRows ? transformRows(r.rows) : r.rows)))
      }
    }

    const client = yield* SqlClient.make({
      acquirer: Effect.succeed(connection(false)),
      // A transaction holds the only connection until it ends.
      transactionAcquirer: Effect.as(Effect.acquireRelease(lock.take(1), () => lock.release(1)), connection(true)),
      compiler,
      spanAttributes: [
        ["db.system.name", "postgresql"],
        ["db.namespace", dataDir]
      ]
    })
    return Object.assign(client, { dataDir, pglite: db }) as PgliteClientShape
  })

export class PgliteClient extends Context.Tag("pantheon-persistence/PgliteClient")<PgliteClient, PgliteClientShape>() {
  /** The client, as `PgliteClient` and as the `SqlClient` every SQL module uses. */
  static readonly layer = (options: PgliteClientConfig = {}): Layer.Layer<PgliteClient | SqlClient.SqlClient, SqlError | DataDirLock.DataDirUnavailable> =>
    Layer.scopedContext(
      Effect.map(make(options), (client) => Context.make(PgliteClient, client).pipe(Context.add(SqlClient.SqlClient, client)))
    ).pipe(Layer.provide(Reactivity.layer))
}
