import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { type ConfigError, Effect, Layer } from "effect"
import { envText } from "../domain/config.js"
import type { DataDirUnavailable, EmbedError, InvalidConfig, UnsupportedLayout } from "../domain/errors.js"
import { Embedder } from "../embedding/Embedder.js"
import type { StoreBackend } from "../services/StoreBackend.js"
import { StoreEvents } from "../services/StoreEvents.js"
import { PgliteClient, type PgliteClientConfig } from "../stores/sql/PgliteClient.js"
import { SqlStore, type SqlStoreOptions } from "../stores/sql/SqlStore.js"

export interface EmbeddedStoreOptions {
  /** Where the data lives: a directory, or "memory://". Default: env `PANTHEON_DATA_DIR`, else `./.pantheon/data`. */
  readonly dataDir?: string
  /** How long to wait for another process to let go of the directory (default 0: fail at once). */
  readonly lockTimeout?: PgliteClientConfig["lockTimeout"]
  /** Dimensions of the feature-hashing embedder (default 256). */
  readonly dimensions?: number
  /** Bytes the embedding cache may hold (default 32 MiB). */
  readonly embedCacheBytes?: number
  readonly vectorMode?: SqlStoreOptions["vectorMode"]
  /** The SQL store's query-result cache (default on; `false` turns it off). */
  readonly resultCache?: SqlStoreOptions["resultCache"]
  /** Another embedder (e.g. `Embedder.layerOllama`); default: from the environment, or feature hashing with `dimensions`. */
  readonly embedder?: Layer.Layer<Embedder, EmbedError | InvalidConfig | ConfigError.ConfigError>
}

/** `PANTHEON_DATA_DIR`, else `./.pantheon/data` (an empty value counts as unset). */
export const dataDirConfig = envText("PANTHEON_DATA_DIR", "dataDir", { fallback: "./.pantheon/data" })

/**
 * The embedded backend (the default, no server): PGlite with pgvector on a data directory or in
 * memory, one instance shared by every manager, events within this process. One process at a time
 * on a directory: it is locked while open (`DataDirUnavailable` names the process that holds it). Provides the
 * `StoreBackend`, `StoreEvents` and the `SqlStore` (`registerSource`, `removeSource`), and the
 * `Embedder` and SQL client underneath.
 */
export const EmbeddedStoreLive = (
  options: EmbeddedStoreOptions = {}
): Layer.Layer<
  StoreBackend | StoreEvents | SqlStore | Embedder | SqlClient | PgliteClient,
  SqlError | UnsupportedLayout | DataDirUnavailable | InvalidConfig | ConfigError.ConfigError | EmbedError
> => {
  const client = Layer.unwrapEffect(
    Effect.map(options.dataDir === undefined ? dataDirConfig : Effect.succeed(options.dataDir), (dataDir) => PgliteClient.layer({ dataDir, ...(options.lockTimeout === undefined ? {} : { lockTimeout: options.lockTimeout }) }))
  )
  const embedder =
    options.embedder ??
    (options.dimensions !== undefined || options.embedCacheBytes !== undefined
      ? Embedder.layerFeatureHashing({ dimensions: options.dimensions ?? 256, cacheBytes: options.embedCacheBytes })
      : Embedder.layerFromEnv)
  return SqlStore.backend.pipe(
    Layer.provideMerge(SqlStore.layer({ vectorMode: options.vectorMode ?? "auto", ...(options.resultCache === undefined ? {} : { resultCache: options.resultCache }) })),
    Layer.provideMerge(Layer.mergeAll(client, embedder, StoreEvents.layerLocal))
  )
}
