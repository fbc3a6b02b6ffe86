/**
 * An `@effect/sql` `SqlClient` over PGlite (Postgres in this process, with pgvector), shaped like
 * `@effect/sql-pg`'s `PgClient`: `make(options)` acquires the database with `acquireRelease`
 * (closed when the layer's scope closes), and `PgliteClient.layer(options)` provides it.
 * The SQL compiler is `@effect/sql-pg`'s, so one SQL code path serves PGlite and a PostgreSQL server.
 *
 * PGlite has one connection. Queries are serialized by a semaphore, and a transaction holds the
 * semaphore until it ends, so another fiber's query never runs inside someone else's transaction.
 * One instance per data directory per process: building the layer twice on one directory shares it.
 * One process per data directory: the directory is locked while it is open (`DataDirLock.ts`).
 * PGlite runs on a worker thread (`PgliteWorkerDatabase.ts`): its start and its statements never
 * hold this thread's event loop, so timers, signals and HTTP requests are served while it works.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import { existsSync, readdirSync, rmSync, statfsSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { Context, Duration, Effect, Layer, Stream } from "effect"
import { errorReason } from "../../domain/errors.js"
import * as DataDirLock from "./DataDirLock.js"
import type { DataDirUnavailable } from "../../domain/errors.js"
import * as PgliteWorkerDatabase from "./PgliteWorkerDatabase.js"

import type { PgliteDatabase } from "./PgliteWorkerDatabase.js"

export type { PgliteDatabase }

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
  /**
   * Longest one statement may take (default 5 minutes). PGlite runs on a worker thread; a worker
   * that does not answer within this is stopped, and the store fails every call with a message
   * saying so (reopen it), instead of hanging.
   */
  readonly callTimeout?: Duration.DurationInput
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
  ready: Promise<PgliteDatabase>
  /** False until `ready` has settled. */
  settled: boolean
  users: number
  readonly semaphore: Effect.Semaphore
  unlock?: () => void
}
const open = new Map<string, Shared>()

/** Present while a new directory is being made: its creation was cut short if it is still there at the next open. */
const CREATING = "pantheon.creating"

/**
 * Before PGlite opens a directory (the lock held): a directory whose creation was cut short (a
 * signal during initdb, which nothing had written to) is emptied and made again; a new one is
 * marked as being made. Returns the marker, when there is one to remove once PGlite is up.
 */
const startCreating = (dataDir: string): string | undefined => {
  const marker = join(dataDir, CREATING)
  if (existsSync(marker)) {
    for (const name of readdirSync(dataDir)) if (name !== DataDirLock.LOCK_FILE && name !== CREATING) rmSync(join(dataDir, name), { recursive: true, force: true })
    return marker
  }
  if (existsSync(join(dataDir, "PG_VERSION"))) return undefined
  writeFileSync(marker, "")
  return marker
}

/** Below this much free space, a failed start is put down to a full disk. */
const LOW_SPACE_BYTES = 64 * 1024 * 1024

/** `the file system holding <dataDir> is full or nearly (N MB free)` when it is, else undefined. */
export const lowSpace = (dataDir: string): string | undefined => {
  try {
    const fs = statfsSync(dataDir)
    const free = fs.bavail * fs.bsize
    return free < LOW_SPACE_BYTES ? `the file system holding ${dataDir} is full or nearly (${(free / 1024 / 1024).toFixed(1)} MB free)` : undefined
  } catch {
    return undefined
  }
}

/** Why a start failed, in words: PGlite's file-system errors are plain objects (`[object Object]` as text). */
const startFailure = (cause: unknown, dataDir: string): string => {
  const said = errorReason(cause)
  const space = lowSpace(dataDir)
  return space === undefined ? said : `${said}; ${space}`
}

/** Joins the shared instance of `dataDir`, starting it when there is none (never caching a failed start). */
const joinShared = (
  dataDir: string,
  lockTimeout: Duration.DurationInput,
  timeouts: { readonly startTimeoutMs: number; readonly callTimeoutMs: number }
): { readonly shared: Shared; readonly key: string | undefined } => {
  const onDisk = dataDir !== MEMORY && !dataDir.includes("://")
  const key = dataDir === MEMORY ? undefined : onDisk ? resolve(dataDir) : dataDir
  const existing = key === undefined ? undefined : open.get(key)
  if (existing) {
    existing.users++
    return { shared: existing, key }
  }
  const entry: Shared = { ready: Promise.resolve(undefined as never), settled: false, users: 1, semaphore: Effect.unsafeMakeSemaphore(1) }
  entry.ready = (async () => {
    if (onDisk) entry.unlock = await DataDirLock.lock(dataDir, Duration.toMillis(Duration.decode(lockTimeout)))
    try {
      const marker = onDisk ? startCreating(dataDir) : undefined
      // PGlite runs on a worker thread of its own (its start included), never holding this one's event loop.
      // A failed start stops the worker, which closes its files first: nothing of it stays.
      const db = await PgliteWorkerDatabase.start(dataDir, dataDir === MEMORY ? "memory" : marker !== undefined ? "directory" : undefined, timeouts)
      if (marker !== undefined) rmSync(marker, { force: true })
      return db
    } catch (e) {
      entry.unlock?.()
      throw e
    }
  })()
  entry.ready.then(
    () => (entry.settled = true),
    () => {
      entry.settled = true
      if (key !== undefined && open.get(key) === entry) open.delete(key)
    }
  )
  if (key !== undefined) open.set(key, entry)
  return { shared: entry, key }
}

/** Leaves the shared instance; the last user closes it and lets go of the lock, once it has started. */
const leave = async ({ shared, key }: ReturnType<typeof joinShared>): Promise<void> => {
  if (--shared.users > 0) return
  if (key !== undefined && open.get(key) === shared) open.delete(key)
  const db = await shared.ready.catch(() => undefined)
  if (db === undefined) return // a failed start let go of what it took
  await db.close()
  shared.unlock?.()
}

const acquirePglite = (dataDir: string, startTimeout: Duration.DurationInput, lockTimeout: Duration.DurationInput, callTimeout: Duration.DurationInput) =>
  Effect.gen(function* () {
    // Joining is instant; waiting for the start is interruptible (a signal is answered at once), and a
    // start left behind is closed, and its lock let go, in the background once it is up.
    const joined = yield* Effect.acquireRelease(Effect.sync(() =>
        joinShared(dataDir, lockTimeout, { startTimeoutMs: Duration.toMillis(Duration.decode(startTimeout)), callTimeoutMs: Duration.toMillis(Duration.decode(callTimeout)) })
      ), (joined) =>
      Effect.promise(() => (joined.shared.settled ? leave(joined) : (void leave(joined), Promise.resolve())))
    )
    const db = yield* Effect.tryPromise({
      try: () => joined.shared.ready,
      catch: (cause) =>
        cause instanceof DataDirLock.DataDirUnavailable
          ? cause
          : new SqlError({ cause, message: `PGlite: failed to open ${dataDir}: ${startFailure(cause, dataDir)}` })
    }).pipe(
      Effect.timeoutFail({
        duration: startTimeout,
        onTimeout: () => new SqlError({ cause: new Error("timeout"), message: `PGlite: ${dataDir} did not start within ${Duration.format(Duration.decode(startTimeout))}` })
      })
    )
    return { db, shared: joined.shared }
  })

export const make = (options: PgliteClientConfig = {}) =>
  Effect.gen(function* () {
    const dataDir = options.dataDir ?? MEMORY
    const { db, shared } = yield* acquirePglite(dataDir, options.startTimeout ?? Duration.seconds(60), options.lockTimeout ?? 0, options.callTimeout ?? Duration.minutes(5))
    const lock = shared.semaphore
    // @effect/sql-pg (and pg under it) only once an embedded store opens: its compiler is the one we use.
    const compiler = (yield* Effect.promise(() => import("@effect/sql-pg/PgClient"))).makeCompiler()

    const failed = (cause: unknown) =>
      new SqlError({ cause, message: `Failed to execute statement: ${errorReason(cause)}` })

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
  static readonly layer = (options: PgliteClientConfig = {}): Layer.Layer<PgliteClient | SqlClient.SqlClient, SqlError | DataDirUnavailable> =>
    Layer.scopedContext(
      Effect.map(make(options), (client) => Context.make(PgliteClient, client).pipe(Context.add(SqlClient.SqlClient, client)))
    ).pipe(Layer.provide(Reactivity.layer))
}
