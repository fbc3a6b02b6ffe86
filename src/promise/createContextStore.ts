/**
 * The Promise API over this project's own stores: the embedded store (`{ dataDir }`) or a
 * PostgreSQL server (`{ databaseUrl }`), for callers that are not Effect code. Each method is the
 * Effect API's operation of the same name run on one runtime (`runtime.ts`), so it behaves and fails
 * as that operation does: it rejects with the same tagged error classes (`InvalidSourceId`,
 * `StoreUnavailable`, `StoreQueryError`, `InvalidCompileRequest`, `DataDirUnavailable`, …).
 */
import { type Duration, Effect, Either, Layer, Redacted } from "effect"
import type { LoadingCacheStats } from "../cache/LoadingCache.js"
import { decodeCacheConfig, isUrl } from "../domain/config.js"
import { InvalidConfig } from "../domain/errors.js"
import type { Message, NewEntry } from "../domain/schemas.js"
import { Embedder, type EmbedderStats } from "../embedding/Embedder.js"
import { EmbeddedStoreLive } from "../layers/EmbeddedStoreLive.js"
import { PersistenceAdapterLive, type PersistenceAdapterOptions } from "../layers/PersistenceAdapterLive.js"
import { PostgresStoreLive } from "../layers/PostgresStoreLive.js"
import { ContextCompiler } from "../services/ContextCompiler.js"
import { ManagerCache } from "../services/ManagerCache.js"
import type { StoreEvents } from "../services/StoreEvents.js"
import type { StoreManagerRegistry } from "../services/StoreManagerRegistry.js"
import type { SqlSourceDescriptor } from "../stores/sql/catalog.js"
import { SqlStore } from "../stores/sql/SqlStore.js"
import { type CompileOptions, invalidateEverywhere } from "./makePantheonPersistenceAdapter.js"
import { makeFacadeRuntime } from "./runtime.js"

/** Where the store lives: a data directory of the embedded store (or `"memory://"`), or a PostgreSQL server. */
export type ContextStoreTarget =
  | {
      /** A directory (created when missing), or `"memory://"` for a store that keeps nothing. One process at a time. */
      readonly dataDir: string
      /** How long to wait for another process to let go of the directory (default 0: fail at once). */
      readonly lockTimeout?: Duration.DurationInput
    }
  | {
      /** `postgres://user@host:5432/db`. */
      readonly databaseUrl: string | Redacted.Redacted
      /** Connections this instance may hold, one of them listening (default 10, at least 2). */
      readonly maxConnections?: number
      /** The NOTIFY channel the instances on the database share (default `pantheon_changes`). */
      readonly channel?: string
    }

/** The cache configuration (default: from `PANTHEON_*` variables) and the compile's resolvers, as for `PersistenceAdapterLive`. */
export type ContextStoreOptions = PersistenceAdapterOptions

export interface ContextStoreStats {
  /** The store managers' cache. */
  readonly managers: LoadingCacheStats
  /** The SQL query-result cache. */
  readonly results: LoadingCacheStats
  /** The embedder and its cache. */
  readonly embeddings: EmbedderStats
}

export interface ContextStore {
  /** Registers a source (or updates its label, or brings a removed one back). Rejects with `InvalidSourceId` or `StoreUnavailable`. */
  registerSource(id: string, options?: { readonly label?: string }): Promise<SqlSourceDescriptor>
  /** Upserts entries by id into a registered source. Rejects with `InvalidSourceId`, `StoreUnavailable` or `StoreQueryError` (a bad entry, naming it). */
  insert(id: string, entries: ReadonlyArray<NewEntry>): Promise<void>
  /** Compiles context (README "Compile semantics"). Rejects with `InvalidCompileRequest`, `CatalogUnavailable` or `SourceFailed`. */
  compile(request: CompileOptions, options?: { readonly signal?: AbortSignal }): Promise<Array<Message>>
  /** The registered sources, oldest first. */
  sources(): Promise<ReadonlyArray<SqlSourceDescriptor>>
  /** Drops one source's cached manager (or all) and the cached catalog, on every instance: the next compile re-reads both. */
  invalidate(id?: string): Promise<void>
  /** The caches' counters. */
  stats(): Promise<ContextStoreStats>
  /** Closes the store (the data directory's lock, the server's connections); later calls reject with `AdapterDisposed`. */
  dispose(): Promise<void>
}

type Services = SqlStore | ContextCompiler | ManagerCache | StoreManagerRegistry | StoreEvents | Embedder

/** The backend layer of a target; a target that is neither kind is refused, naming the field. */
/** The store the target names (its layer's failures surface as the first call's rejection). */
const backend = (target: ContextStoreTarget): Layer.Layer<Layer.Layer.Success<ReturnType<typeof PostgresStoreLive>>, unknown> => {
  const t = (target ?? {}) as { readonly dataDir?: unknown; readonly databaseUrl?: unknown }
  if ((t.dataDir === undefined) === (t.databaseUrl === undefined)) {
    throw new InvalidConfig({ field: "target", value: target, reason: "must have either dataDir or databaseUrl" })
  }
  if ("dataDir" in target && target.dataDir !== undefined) {
    if (typeof target.dataDir !== "string" || target.dataDir.trim() === "") {
      throw new InvalidConfig({ field: "target.dataDir", value: target.dataDir, reason: 'must be a directory or "memory://"' })
    }
    return EmbeddedStoreLive({ dataDir: target.dataDir, ...(target.lockTimeout === undefined ? {} : { lockTimeout: target.lockTimeout }) })
  }
  const server = target as Extract<ContextStoreTarget, { databaseUrl: unknown }>
  if (!Redacted.isRedacted(server.databaseUrl) && !(typeof server.databaseUrl === "string" && isUrl(server.databaseUrl, ["postgres:", "postgresql:"]))) {
    throw new InvalidConfig({ field: "target.databaseUrl", value: server.databaseUrl, secret: true, reason: "must be a postgres:// or postgresql:// URL" })
  }
  return PostgresStoreLive({
    url: server.databaseUrl,
    ...(server.maxConnections === undefined ? {} : { maxConnections: server.maxConnections }),
    ...(server.channel === undefined ? {} : { channel: server.channel })
  })
}

/**
 * A context store over the embedded store or a PostgreSQL server. Nothing is opened until the first
 * call; a store that cannot open (a directory in use, a server down) rejects that call with the
 * reason, and the next call tries again.
 *
 * @throws InvalidConfig when the target or an explicit `cache` configuration is invalid (the message names the field).
 */
export const createContextStore = (target: ContextStoreTarget, options: ContextStoreOptions = {}): ContextStore => {
  const layer = backend(target)
  if (options.cache !== undefined) {
    const config = decodeCacheConfig(options.cache)
    if (Either.isLeft(config)) throw config.left
  }
  const { run, dispose } = makeFacadeRuntime<Services>(PersistenceAdapterLive(options).pipe(Layer.provideMerge(layer)))

  return {
    registerSource: (id, opts) => run("registerSource", Effect.flatMap(SqlStore, (s) => s.registerSource(id, opts))),
    insert: (id, entries) => run("insert", Effect.flatMap(SqlStore, (s) => Effect.flatMap(s.open(id), (m) => m.insert(entries)))),
    compile: (request, opts) => run("compile", Effect.flatMap(ContextCompiler, (c) => c.compile(request)), opts?.signal),
    sources: () => run("sources", Effect.flatMap(SqlStore, (s) => s.catalog)),
    invalidate: (id) => run("invalidate", invalidateEverywhere(id)),
    stats: () =>
      run(
        "stats",
        Effect.all({
          managers: Effect.flatMap(ManagerCache, (c) => c.stats),
          results: Effect.flatMap(SqlStore, (s) => s.resultStats),
          embeddings: Effect.flatMap(Embedder, (e) => e.stats)
        })
      ),
    dispose
  }
}
