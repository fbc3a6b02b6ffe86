/**
 * The Promise facade: a drop-in for Pantheon's `makePantheonPersistenceAdapter`, with the caches.
 * All calls run through one runtime over the same layers as the Effect API (`runtime.ts`: every
 * rejection is an `Error` with a `_tag`, and a forgotten `dispose()` never keeps the process alive).
 */
import { Effect, Either, Layer } from "effect"
import type { LoadingCacheStats } from "../cache/LoadingCache.js"
import type { Resolvers } from "../domain/compile.js"
import { type CacheConfigInput, decodeCacheConfig } from "../domain/config.js"
import { InvalidConfig } from "../domain/errors.js"
import { Invalidated } from "../domain/events.js"
import type { Message } from "../domain/schemas.js"
import { promiseBackend } from "../layers/backends.js"
import { PersistenceAdapterLive } from "../layers/PersistenceAdapterLive.js"
import { ContextCompiler } from "../services/ContextCompiler.js"
import { ManagerCache } from "../services/ManagerCache.js"
import { StoreEvents } from "../services/StoreEvents.js"
import { StoreManagerRegistry } from "../services/StoreManagerRegistry.js"
import { makeFacadeRuntime } from "./runtime.js"

export interface PersistenceAdapterDeps {
  /** The caller's store managers; `{ name, getMostRecent, getMostRelevant }` each. Cached for `ttl`. */
  readonly getStoreManagers: () => Promise<ReadonlyArray<unknown>>
  readonly resolveRole?: Resolvers["resolveRole"]
  readonly resolveName?: Resolvers["resolveName"]
  readonly formatTime?: Resolvers["formatTime"]
  /** The assistant's display name (default "Pantheon"): its own texts are not prefixed. */
  readonly assistantName?: string
}

export interface CompileOptions {
  readonly texts?: ReadonlyArray<string>
  readonly sources: ReadonlyArray<{ readonly id: string; readonly label?: string; readonly where?: Record<string, unknown>; readonly metadata?: unknown }>
  readonly recentLimit?: number
  readonly queryLimit?: number
  readonly limit?: number
  /** A token budget: the messages, most relevant first, never total more (README "Relevance"). */
  readonly maxTokens?: number
  readonly onSourceError?: "skip" | "fail"
}

export interface PantheonPersistenceAdapter {
  /** Compiles context. Rejects with a typed error (an `Error` with `_tag`) on bad input or catalog failure. */
  compile(opts: CompileOptions, options?: { readonly signal?: AbortSignal }): Promise<Array<Message>>
  /** The manager cache's counters. */
  cacheStats(): Promise<LoadingCacheStats>
  /** Drops one source's manager (or all) and the cached catalog: the next compile re-reads both. */
  invalidate(id?: string): Promise<void>
  /** Stops the background fibers and releases everything; later calls reject with `AdapterDisposed`. */
  dispose(): Promise<void>
}

/** A facade's `invalidate`: the cached catalog, and one source's managers (or all) on every instance. */
export const invalidateEverywhere = (id?: string) =>
  Effect.gen(function* () {
    yield* (yield* StoreManagerRegistry).invalidateCatalog
    yield* (yield* StoreEvents).publish(Invalidated.make({ id: id ?? null }))
  })

type Services = ContextCompiler | ManagerCache | StoreManagerRegistry | StoreEvents

/**
 * @throws InvalidConfig when `deps` or `cacheConfig` is invalid (the message names the field).
 */
export const makePantheonPersistenceAdapter = (
  deps: PersistenceAdapterDeps,
  cacheConfig?: CacheConfigInput
): PantheonPersistenceAdapter => {
  if (deps === null || typeof deps !== "object" || typeof deps.getStoreManagers !== "function") {
    throw new InvalidConfig({ field: "deps.getStoreManagers", value: (deps as any)?.getStoreManagers, reason: "must be a function returning a Promise of store managers" })
  }
  for (const hook of ["resolveRole", "resolveName", "formatTime"] as const) {
    if (deps[hook] !== undefined && typeof deps[hook] !== "function") {
      throw new InvalidConfig({ field: `deps.${hook}`, value: deps[hook], reason: "must be a function" })
    }
  }
  if (deps.assistantName !== undefined && typeof deps.assistantName !== "string") {
    throw new InvalidConfig({ field: "deps.assistantName", value: deps.assistantName, reason: "must be a string" })
  }
  const config = decodeCacheConfig(cacheConfig ?? {})
  if (Either.isLeft(config)) throw config.left

  const compiler = Object.fromEntries(
    Object.entries({
      resolveRole: deps.resolveRole,
      resolveName: deps.resolveName,
      formatTime: deps.formatTime,
      assistantName: deps.assistantName
    }).filter(([, v]) => v !== undefined)
  )
  const layer = PersistenceAdapterLive({ cache: config.right, compiler }).pipe(
    Layer.provideMerge(promiseBackend(() => deps.getStoreManagers()))
  )
  const { run, dispose } = makeFacadeRuntime<Services>(layer)

  return {
    compile: (opts, options) => run("compile", Effect.flatMap(ContextCompiler, (c) => c.compile(opts)), options?.signal),
    cacheStats: () => run("cacheStats", Effect.flatMap(ManagerCache, (c) => c.stats)),
    invalidate: (id) => run("invalidate", invalidateEverywhere(id)),
    dispose
  }
}
