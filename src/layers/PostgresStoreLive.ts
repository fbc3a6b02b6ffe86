import type { SqlClient } from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { type ConfigError, Duration, Effect, Layer, Option, Redacted } from "effect"
import type pg from "pg"
import { envInteger, envText, envValue, isUrl } from "../domain/config.js"
import type { EmbedError, ListenerUnavailable, UnsupportedLayout } from "../domain/errors.js"
import { InvalidConfig } from "../domain/errors.js"
import { Embedder } from "../embedding/Embedder.js"
import type { StoreBackend } from "../services/StoreBackend.js"
import type { StoreEvents } from "../services/StoreEvents.js"
import * as PgStoreEvents from "../stores/sql/PgStoreEvents.js"
import { SqlStore, type SqlStoreOptions } from "../stores/sql/SqlStore.js"

export interface PostgresStoreOptions {
  /** e.g. postgres://user@127.0.0.1:5432/db */
  readonly url: string | Redacted.Redacted
  /**
   * Connections this instance may open in all (default 10): the pool gets all but one, and one
   * listens for the other instances' changes. However many sources, never more.
   */
  readonly maxConnections?: number
  /** The NOTIFY channel the instances share (default `pantheon_changes`). */
  readonly channel?: string
  /** Shown in `pg_stat_activity` (default `pantheon-persistence`). */
  readonly applicationName?: string
  /** Longest wait for a connection (default 5 s): a database that is down fails loads, it does not hang them. */
  readonly connectTimeout?: Duration.DurationInput
  readonly vectorMode?: SqlStoreOptions["vectorMode"]
  /** The SQL store's query-result cache (default on; `false` turns it off). */
  readonly resultCache?: SqlStoreOptions["resultCache"]
  /** Default: from the environment (feature hashing, or Ollama when `PANTHEON_OLLAMA_URL` is set). */
  readonly embedder?: Layer.Layer<Embedder, EmbedError | InvalidConfig | ConfigError.ConfigError>
}

/**
 * The PostgreSQL server backend (`@effect/sql-pg`): one pool shared by every manager, the catalog in
 * the `pantheon_sources` table, and every change published to every instance on the database with
 * LISTEN/NOTIFY (`PgStoreEvents`). Without pgvector, vectors are `real[]` and search is exact cosine.
 */
export const PostgresStoreLive = (
  options: PostgresStoreOptions
): Layer.Layer<
  StoreBackend | StoreEvents | SqlStore | Embedder | SqlClient,
  SqlError | UnsupportedLayout | ListenerUnavailable | InvalidConfig | EmbedError | ConfigError.ConfigError
> => {
  const max = options.maxConnections ?? 10
  if (!Number.isInteger(max) || max < 2) {
    return Layer.fail(new InvalidConfig({ field: "maxConnections", value: max, reason: "must be a whole number of at least 2 (one listens, the rest are the pool)" }))
  }
  const url = typeof options.url === "string" ? Redacted.make(options.url) : options.url
  const applicationName = options.applicationName ?? "pantheon-persistence"
  const connectTimeout = Duration.decode(options.connectTimeout ?? Duration.seconds(5))
  const config: pg.PoolConfig = {
    connectionString: Redacted.value(url),
    max: max - 1,
    application_name: applicationName,
    connectionTimeoutMillis: Duration.toMillis(connectTimeout),
    idleTimeoutMillis: 30_000
  }
  // @effect/sql-pg (and pg) load when this layer is built, not when the package is imported.
  const client = Layer.unwrapEffect(
    Effect.map(
      Effect.promise(() => Promise.all([import("@effect/sql-pg/PgClient"), import("pg")])),
      ([PgClient, { default: driver }]) => PgClient.layerFromPool({ acquire: acquirePool(driver, config, connectTimeout), applicationName })
    )
  )
  const events = PgStoreEvents.layer({ url, applicationName, ...(options.channel ? { channel: options.channel } : {}) })
  return SqlStore.backend.pipe(
    Layer.provideMerge(SqlStore.layer({ vectorMode: options.vectorMode ?? "auto", ...(options.resultCache === undefined ? {} : { resultCache: options.resultCache }) })),
    Layer.provideMerge(events),
    Layer.provideMerge(Layer.merge(client, options.embedder ?? Embedder.layerFromEnv))
  )
}

/** The statement `@effect/sql-pg` sends to cancel a statement whose fiber was interrupted (a deadline). */
const CANCEL = /^SELECT pg_cancel_backend\((\d+)\)$/

/**
 * The pool, with cancels that do not wait for it. `@effect/sql-pg` cancels an interrupted statement
 * with `pg_cancel_backend` sent through the pool, so when the pool is full of the very statements
 * to cancel, the cancel waits behind them and gives up: past-deadline statements kept running and
 * the pool filled with them. Here a cancel goes over a connection of its own, opened and closed at once.
 */
const acquirePool = (driver: typeof pg, config: pg.PoolConfig, connectTimeout: Duration.Duration) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const pool = new driver.Pool(config)
      pool.on("error", () => {})
      const query = pool.query.bind(pool) as (...args: Array<unknown>) => unknown
      ;(pool as { query: unknown }).query = (...args: Array<unknown>) => {
        const done = args.at(-1)
        if (typeof args[0] !== "string" || !CANCEL.test(args[0]) || typeof done !== "function") return query(...args)
        const own = new driver.Client({ ...config, application_name: `${config.application_name} (cancel)` })
        own.on("error", () => {})
        own
          .connect()
          .then(() => own.query(args[0] as string))
          .catch(() => {}) // best effort, as @effect/sql-pg's own
          .finally(() => void own.end().catch(() => {}).finally(() => done()))
      }
      return pool
    }),
    (pool) => Effect.promise(() => pool.end()).pipe(Effect.timeoutOption(1000))
  ).pipe(
    // As PgClient.make does: a database that does not answer fails the layer, within connectTimeout.
    Effect.tap((pool) =>
      Effect.tryPromise({ try: () => pool.query("SELECT 1"), catch: (cause) => new SqlError({ cause, message: "PgClient: Failed to connect" }) }).pipe(
        Effect.timeoutFail({ duration: connectTimeout, onTimeout: () => new SqlError({ cause: new Error("Connection timed out"), message: "PgClient: Connection timed out" }) })
      )
    )
  )

/**
 * `PANTHEON_DATABASE_URL`, else `DATABASE_URL`; unset (or empty) means the embedded store. A value
 * that is not a postgres:// URL is refused without repeating it (it may hold a password).
 */
export const databaseUrlConfig: Effect.Effect<Option.Option<Redacted.Redacted>, InvalidConfig> = Effect.gen(function* () {
  const own = yield* envValue("PANTHEON_DATABASE_URL")
  const env = Option.isSome(own) ? "PANTHEON_DATABASE_URL" : "DATABASE_URL"
  const url = yield* envText(env, "url", { fallback: "", valid: (u) => isUrl(u, ["postgres:", "postgresql:"]), reason: "must be a postgres:// or postgresql:// URL", secret: true })
  return url === "" ? Option.none() : Option.some(Redacted.make(url))
})

/** The server's pool size and NOTIFY channel from the environment. */
export const postgresConfig = Effect.all({
  maxConnections: envInteger("PANTHEON_DB_MAX_CONNECTIONS", "maxConnections", 10, 2),
  channel: envText("PANTHEON_DB_CHANNEL", "channel", {
    fallback: "pantheon_changes",
    // PostgreSQL truncates identifiers past 63 bytes: two long names would share a channel.
    valid: (name) => Buffer.byteLength(name) <= 63,
    reason: "must be at most 63 bytes (a PostgreSQL identifier)"
  })
})
