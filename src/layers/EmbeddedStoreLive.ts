import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Config, type ConfigError, Effect, Layer } from "effect"
import type { EmbedError } from "../domain/errors.js"
import { type Embedder, layerFeatureHashing, layerFromEnv } from "../services/Embedder.js"
import type { StoreBackend } from "../services/StoreBackend.js"
import * as Pglite from "../stores/sql/PgliteClient.js"
import * as Sql from "../stores/sql/SqlStore.js"

export interface EmbeddedStoreOptions {
  /** Where the data lives: a directory, or "memory://". Default: env `PANTHEON_DATA_DIR`, else `./.pantheon/data`. */
  readonly dataDir?: string
  /** Dimensions of the feature-hashing embedder (default 256). */
  readonly dimensions?: number
  /** Bytes the embedding cache may hold (default 32 MiB). */
  readonly embedCacheBytes?: number
  readonly vectorMode?: Sql.SqlStoreOptions["vectorMode"]
  /** Another embedder (e.g. `layerOllama`); default: from the environment (`layerFromEnv`), or feature hashing with `dimensions`. */
  readonly embedder?: Layer.Layer<Embedder, EmbedError>
}

export const dataDirConfig = Config.string("PANTHEON_DATA_DIR").pipe(Config.withDefault("./.pantheon/data"))

/**
 * The embedded backend (the default, no server): PGlite with pgvector on a data directory or in
 * memory, one instance shared by every manager. Provides the `StoreBackend` and the `SqlStore`
 * (`registerSource`, `removeSource`), and the `Embedder` and SQL client underneath.
 */
export const EmbeddedStoreLive = (
  options: EmbeddedStoreOptions = {}
): Layer.Layer<StoreBackend | Sql.SqlStore | Embedder | SqlClient | Pglite.PgliteClient, SqlError | ConfigError.ConfigError | EmbedError> => {
  const client = Layer.unwrapEffect(
    Effect.map(options.dataDir === undefined ? dataDirConfig : Effect.succeed(options.dataDir), (dataDir) => Pglite.layer({ dataDir }))
  )
  const embedder =
    options.embedder ??
    (options.dimensions !== undefined || options.embedCacheBytes !== undefined
      ? layerFeatureHashing({ dimensions: options.dimensions ?? 256, cacheBytes: options.embedCacheBytes })
      : layerFromEnv)
  return Sql.backendLayer.pipe(
    Layer.provideMerge(Sql.layer({ vectorMode: options.vectorMode ?? "auto" })),
    Layer.provideMerge(Layer.merge(client, embedder))
  )
}
