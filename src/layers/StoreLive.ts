import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { type ConfigError, Effect, Layer, Option } from "effect"
import type { DataDirUnavailable, EmbedError, InvalidConfig, ListenerUnavailable, UnsupportedLayout } from "../domain/errors.js"
import type { Embedder } from "../embedding/Embedder.js"
import type { StoreBackend } from "../services/StoreBackend.js"
import type { StoreEvents } from "../services/StoreEvents.js"
import type { SqlStore } from "../stores/sql/SqlStore.js"
import { EmbeddedStoreLive, type EmbeddedStoreOptions } from "./EmbeddedStoreLive.js"
import { databaseUrlConfig, PostgresStoreLive, postgresConfig } from "./PostgresStoreLive.js"

/**
 * The backend the environment asks for: PostgreSQL when `PANTHEON_DATABASE_URL` (or `DATABASE_URL`)
 * is set, otherwise the embedded store in `PANTHEON_DATA_DIR` (or `dataDir`). The command line uses this.
 */
export const StoreLive = (
  embedded: EmbeddedStoreOptions = {}
): Layer.Layer<
  StoreBackend | StoreEvents | SqlStore | Embedder | SqlClient,
  SqlError | UnsupportedLayout | ListenerUnavailable | DataDirUnavailable | InvalidConfig | EmbedError | ConfigError.ConfigError
> =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const url = yield* databaseUrlConfig
      if (Option.isNone(url)) return EmbeddedStoreLive(embedded) as ReturnType<typeof StoreLive>
      const pg = yield* postgresConfig
      return PostgresStoreLive({ url: url.value, maxConnections: pg.maxConnections, channel: pg.channel }) as ReturnType<typeof StoreLive>
    })
  )
