/**
 * The Promise facade: a drop-in for Pantheon's `makePantheonPersistenceAdapter`, with the caches.
 * All calls run through one `ManagedRuntime` over the same layers as the Effect API.
 */
import { Cause, Effect, Either, Exit, Layer, ManagedRuntime } from "effect"
import type { Resolvers } from "../domain/compile.js"
import { type CacheConfigInput, decodeCacheConfig } from "../domain/config.js"
import { InvalidConfig } from "../domain/errors.js"
import type { Message } from "../domain/schemas.js"
import { legacyBackend } from "../layers/backends.js"
import { PersistenceAdapterLive } from "../layers/PersistenceAdapterLive.js"
import { ContextCompiler } from "../services/ContextCompiler.js"
import { type CacheStats, ManagerCache } from "../services/ManagerCache.js"
import { StoreManagerRegistry } from "../services/StoreManagerRegistry.js"

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
  readonly onSourceError?: "skip" | "fail"
}

export interface PantheonPersistenceAdapter {
  /** Compiles context. Rejects with a typed error (an `Error` with `_tag`) on bad input or catalog failure. */
  compile(opts: CompileOptions, options?: { readonly signal?: AbortSignal }): Promise<Array<Message>>
  cacheStats(): Promise<CacheStats>
  /** Drops one source's manager (or all) and the cached catalog: the next compile re-reads both. */
  invalidate(id?: string): Promise<void>
  /** Stops the background fibers and releases everything; later calls reject. */
  dispose(): Promise<void>
}

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
    Layer.provide(legacyBackend(() => deps.getStoreManagers()))
  )
  const runtime = ManagedRuntime.make(layer)
  let disposed = false

  const run = async <A>(effect: Effect.Effect<A, unknown, ContextCompiler | ManagerCache | StoreManagerRegistry>, signal?: AbortSignal): Promise<A> => {
    if (disposed) throw new Error("pantheon-persistence: this adapter has been disposed")
    const exit = await runtime.runPromiseExit(effect, signal ? { signal } : undefined)
    if (Exit.isSuccess(exit)) return exit.value
    if (signal?.aborted) throw signal.reason ?? new Error("aborted")
    throw Cause.squash(exit.cause)
  }

  return {
    compile: (opts, options) => run(Effect.flatMap(ContextCompiler, (c) => c.compile(opts)), options?.signal),
    cacheStats: () => run(Effect.flatMap(ManagerCache, (c) => c.stats)),
    invalidate: (id) =>
      run(
        Effect.gen(function* () {
          const registry = yield* StoreManagerRegistry
          const cache = yield* ManagerCache
          yield* registry.invalidateCatalog
          yield* id === undefined ? cache.invalidateAll : cache.invalidate(id)
        })
      ),
    dispose: async () => {
      if (disposed) return
      disposed = true
      await runtime.dispose()
    }
  }
}
