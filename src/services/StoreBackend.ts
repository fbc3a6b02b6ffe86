import { Context, type Effect } from "effect"
import type { CatalogUnavailable, InvalidSourceId, StoreUnavailable } from "../domain/errors.js"
import type { StoreDescriptor } from "../domain/schemas.js"
import type { StoreManager } from "./StoreManager.js"

/**
 * What a backend (embedded PGlite, a PostgreSQL server, the caller's Promise managers) provides:
 * the catalog of sources and the factory that opens a source's manager. Callers go through
 * `StoreManagerRegistry`, which caches the catalog, and `ManagerCache`, which caches the managers.
 * Changes travel on `StoreEvents`, which every backend layer provides too.
 */
export interface StoreBackendShape {
  /** Every source the backend has, in catalog order. Uncached: the registry caches it. */
  readonly catalog: Effect.Effect<ReadonlyArray<StoreDescriptor>, CatalogUnavailable>
  /** Opens the manager of a source of the catalog (the descriptor is trusted): the expensive call the cache exists to avoid. */
  readonly open: (descriptor: StoreDescriptor, options: OpenOptions) => Effect.Effect<StoreManager, StoreUnavailable | InvalidSourceId>
}

export interface OpenOptions {
  /** The byte budget of the manager cache: a backend that can hold a source in memory (warm) keeps within it. */
  readonly warmBytes: number
}

export class StoreBackend extends Context.Tag("pantheon-persistence/StoreBackend")<StoreBackend, StoreBackendShape>() {}
