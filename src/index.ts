/**
 * pantheon-persistence: compile LLM context from named store sources, with caches that make it cheap.
 *
 * The public API: what a user calls, and every type that appears in its signatures (the API report,
 * api/pantheon-persistence.api.md, lists it; `npm run api:update` after a deliberate change). Helpers
 * stay internal: docs/decisions/public-api.md.
 */

// The Promise API: the Pantheon drop-in over the caller's managers, and a store of our own.
export {
  type CompileOptions,
  makePantheonPersistenceAdapter,
  type PantheonPersistenceAdapter,
  type PersistenceAdapterDeps
} from "./promise/makePantheonPersistenceAdapter.js"
export {
  type ContextStore,
  type ContextStoreOptions,
  type ContextStoreStats,
  type ContextStoreTarget,
  createContextStore
} from "./promise/createContextStore.js"
export type { DualStoreManagerLike, PromiseEntry } from "./stores/promise.js"

// Requests, entries, messages and the compile's resolvers.
export {
  CompileRequest,
  type CompileRequestInput,
  ContextSource,
  Message,
  NewEntry,
  type NormalizedRequest,
  Role,
  type StoreDescriptor,
  type StoreEntry,
  Where
} from "./domain/schemas.js"
export type { Metadata, Resolvers } from "./domain/compile.js"
export type { Comparison, Filter, Scalar } from "./domain/filter.js"

// Errors: every rejection and typed failure of the API.
export * from "./domain/publicErrors.js"
export { AdapterDisposed, DamagedEntry, InvalidFilter } from "./domain/errors.js"

// Configuration.
export {
  type CacheConfig,
  type CacheConfigInput,
  cacheConfigFromEnv,
  cacheConfigFromEnvironment,
  decodeCacheConfig,
  defaultCacheConfig,
  type DurationLike
} from "./domain/config.js"

// Events.
export { DataWritten, Invalidated, Resync, SourceAdded, SourceChanged, SourceRemoved, StoreEvent } from "./domain/events.js"

// Services.
export { CacheSettings } from "./services/CacheSettings.js"
export { ContextCompiler, type CompilerOptions, type ContextCompilerShape } from "./services/ContextCompiler.js"
export { ManagerCache, type ManagerCacheShape } from "./services/ManagerCache.js"
export { SlowSources, type SlowSource, type SlowSourcesShape } from "./services/SlowSources.js"
export { StoreManagerRegistry, type StoreManagerRegistryShape } from "./services/StoreManagerRegistry.js"
export type { Catalog } from "./domain/catalog.js"
export { StoreEvents, type StoreEventsShape } from "./services/StoreEvents.js"
export { type OpenOptions, StoreBackend, type StoreBackendShape } from "./services/StoreBackend.js"
export type { RelevanceQuery, StoreManager } from "./services/StoreManager.js"
export { Embedder, type EmbedderShape, type EmbedderStats } from "./embedding/Embedder.js"
export type { OllamaConfig } from "./embedding/ollama.js"
export type { OpenAIEmbedderConfig } from "./embedding/openai.js"

// Layers: the services over a backend, and the backends.
export { PersistenceAdapterLive, type PersistenceAdapterOptions } from "./layers/PersistenceAdapterLive.js"
export { EmbeddedStoreLive, type EmbeddedStoreOptions } from "./layers/EmbeddedStoreLive.js"
export { PostgresStoreLive, type PostgresStoreOptions } from "./layers/PostgresStoreLive.js"
export { StoreLive } from "./layers/StoreLive.js"
export { managersBackend, promiseBackend } from "./layers/backends.js"
export { MetricsServer, MetricsServerLive, type MetricsServerOptions } from "./layers/MetricsServerLive.js"
export { health } from "./layers/health.js"

// The SQL store and its clients.
export { SqlStore, type SqlStoreOptions, type SqlStoreShape, type VectorMode } from "./stores/sql/SqlStore.js"
export type { SqlSourceDescriptor } from "./stores/sql/catalog.js"
export type { ResultCacheOptions } from "./stores/sql/ResultCache.js"
export { PgliteClient, type PgliteClientConfig, type PgliteClientShape, type PgliteDatabase } from "./stores/sql/PgliteClient.js"
export type { StartedFrom } from "./stores/sql/clusterTemplate.js"
export * as PgStoreEvents from "./stores/sql/PgStoreEvents.js"

// The cache engine and the metrics.
export * as LoadingCache from "./cache/LoadingCache.js"
export type { LoadingCacheOptions, LoadingCacheStats, RemovalCause, RemovalListener } from "./cache/LoadingCache.js"
export type { EvictionPolicy } from "./cache/PolicyDuel.js"
export * as Metrics from "./publicMetrics.js"
