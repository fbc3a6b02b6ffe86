import type { Effect } from "effect"
import type { LoadError, StoreQueryError } from "../domain/errors.js"
import type { NewEntry, StoreEntry, Where } from "../domain/schemas.js"

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
