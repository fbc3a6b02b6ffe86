import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { type ConfigError, Duration, Effect, Layer, Option, Redacted } from "effect"
import { envInteger, envText, envValue, isUrl } from "../domain/config.js"
import type { EmbedError } from "../domain/errors.js"
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
): Layer.Layer<StoreBackend | StoreEvents | SqlStore | Embedder | SqlClient, SqlError | InvalidConfig | EmbedError | ConfigError.ConfigError> => {
  const max = options.maxConnections ?? 10
  if (!Number.isInteger(max) || max < 2) {
    return Layer.fail(new InvalidConfig({ field: "maxConnections", value: max, reason: "must be a whole number of at least 2 (one listens, the rest are the pool)" }))
  }
  const url = typeof options.url === "string" ? Redacted.make(options.url) : options.url
  const applicationName = options.applicationName ?? "pantheon-persistence"
  // @effect/sql-pg (and pg) load when this layer is built, not when the package is imported.
  const client = Layer.unwrapEffect(
    Effect.map(Effect.promise(() => import("@effect/sql-pg/PgClient")), (PgClient) =>
      PgClient.layer({
        url,
        maxConnections: max - 1,
        applicationName,
        connectTimeout: options.connectTimeout ?? Duration.seconds(5),
        idleTimeout: Duration.seconds(30)
      })
    )
  )
  const events = PgStoreEvents.layer({ url, applicationName, ...(options.channel ? { channel: options.channel } : {}) })
  return SqlStore.backend.pipe(
    Layer.provideMerge(SqlStore.layer({ vectorMode: options.vectorMode ?? "auto", ...(options.resultCache === undefined ? {} : { resultCache: options.resultCache }) })),
    Layer.provideMerge(events),
    Layer.provideMerge(Layer.merge(client, options.embedder ?? Embedder.layerFromEnv))
  )
}

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
