import { Layer } from "effect"
import type { CacheConfigInput } from "../domain/config.js"
import type { InvalidConfig } from "../domain/errors.js"
import { CacheSettings } from "../services/CacheSettings.js"
import { type CompilerOptions, ContextCompiler } from "../services/ContextCompiler.js"
import { ManagerCache } from "../services/ManagerCache.js"
import { SlowSources } from "../services/SlowSources.js"
import type { StoreBackend } from "../services/StoreBackend.js"
import type { StoreEvents } from "../services/StoreEvents.js"
import { StoreManagerRegistry } from "../services/StoreManagerRegistry.js"

export interface PersistenceAdapterOptions {
  /** The cache configuration; when absent it is read from `PANTHEON_*` environment variables. */
  readonly cache?: CacheConfigInput
  /** Resolvers of names, roles and times, and the assistant's name. */
  readonly compiler?: CompilerOptions
}

const settings = (cache: CacheConfigInput | undefined): Layer.Layer<CacheSettings, InvalidConfig> =>
  cache === undefined ? CacheSettings.layerFromEnv : CacheSettings.layer(cache)

/**
 * `ContextCompiler`, `ManagerCache`, `StoreManagerRegistry` and `SlowSources` over a backend: provide one of the
 * backend layers (`EmbeddedStoreLive`, `PostgresStoreLive`, `StoreLive`, `promiseBackend`,
 * `managersBackend`), each of which provides `StoreBackend` and `StoreEvents`.
 */
export const PersistenceAdapterLive = (
  options: PersistenceAdapterOptions = {}
): Layer.Layer<ContextCompiler | ManagerCache | StoreManagerRegistry | SlowSources | CacheSettings, InvalidConfig, StoreBackend | StoreEvents> =>
  ContextCompiler.layer(options.compiler).pipe(
    Layer.provideMerge(Layer.merge(ManagerCache.layer, SlowSources.layer)),
    Layer.provideMerge(StoreManagerRegistry.layer),
    Layer.provideMerge(settings(options.cache))
  )
