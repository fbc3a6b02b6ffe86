import type { Effect } from "effect"
import type { StoreQueryError } from "../domain/errors.js"
import type { NewEntry, StoreEntry, Where } from "../domain/schemas.js"

/**
 * The port every store implements: one manager per source. Managers are light handles (a name and
 * prepared queries over a shared pool or client), so dropping one from the cache never closes a
 * connection.
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
}
