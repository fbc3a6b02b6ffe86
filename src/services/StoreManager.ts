import type { Effect } from "effect"
import type { LoadError, StoreQueryError } from "../domain/errors.js"
import type { NewEntry, StoreEntry, Where } from "../domain/schemas.js"

/** A relevance query that knows which texts are the question. */
export interface RelevanceQuery {
  /** The question's texts: they alone rank the entries (hybrid relevance, README "Relevance"). */
  readonly question: ReadonlyArray<string>
  readonly limit: number
  readonly where?: Where | undefined
  /** Ids of entries the caller holds already (the recent block): never returned, so they spend no slot. */
  readonly exclude?: ReadonlyArray<string> | undefined
}

/**
 * The port every store implements: one manager per source. Managers never own a connection (they
 * are handles over a shared pool or client, or hold a source's entries in memory: a warm manager),
 * so dropping one from the cache never closes anything.
 */
export interface StoreManager {
  readonly name: string
  /** The newest entries first. */
  readonly getMostRecent: (limit: number, where?: Where) => Effect.Effect<ReadonlyArray<StoreEntry>, StoreQueryError>
  /** The entries most similar to any of `queries`, best first, each text once. */
  readonly getMostRelevant: (
    queries: ReadonlyArray<string>,
    limit: number,
    where?: Where
  ) => Effect.Effect<ReadonlyArray<StoreEntry>, StoreQueryError>
  /**
   * The richer relevance query of this project's own stores (optional: the caller's Pantheon
   * managers have only `getMostRelevant`): the store knows which texts are the question and which
   * entries the caller already holds.
   */
  readonly findRelevant?: (query: RelevanceQuery) => Effect.Effect<ReadonlyArray<StoreEntry>, StoreQueryError>
  /** Upsert by id. */
  readonly insert: (entries: ReadonlyArray<NewEntry>) => Effect.Effect<void, StoreQueryError>
  /** Bytes the manager holds in memory (a warm manager's entries); absent for a light handle. */
  readonly weight?: () => number
  /**
   * Brings a manager that holds data up to date, cheaply when nothing changed: the manager cache's
   * reload after `ttl` uses it instead of opening the source again.
   */
  readonly refresh?: Effect.Effect<StoreManager, LoadError>
  /** Called once the manager cache has dropped the manager (evicted, expired, invalidated, replaced): stops its background work and lets go of what it holds. */
  readonly release?: Effect.Effect<void>
}
