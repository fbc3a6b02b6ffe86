import { Context, type Effect, type Stream } from "effect"
import type { CatalogUnavailable, InvalidSourceId, StoreUnavailable } from "../domain/errors.js"
import type { CatalogChange, StoreDescriptor } from "../domain/schemas.js"
import type { StoreManager } from "./StoreManager.js"

/**
 * What a backend (embedded PGlite, a PostgreSQL server, the caller's Promise managers) provides:
 * the catalog of sources and the factory that opens a source's manager. Callers go through
 * `StoreManagerRegistry`, which caches the catalog, and `ManagerCache`, which caches the managers.
 */
export interface StoreBackendShape {
  /** Every source the backend has, in catalog order. Uncached: the registry caches it. */
  readonly catalog: Effect.Effect<ReadonlyArray<StoreDescriptor>, CatalogUnavailable>
  /** Opens the manager of one source: the expensive call the cache exists to avoid. */
  readonly open: (descriptor: StoreDescriptor) => Effect.Effect<StoreManager, StoreUnavailable | InvalidSourceId>
  /** Changes the backend learns of by itself (a registration, a NOTIFY from another instance). */
  readonly changes: Stream.Stream<CatalogChange>
  /** Tells the other instances that share this backend to drop a manager (`null`: all of them). */
  readonly broadcastInvalidation: (id: string | null) => Effect.Effect<void>
}

export class StoreBackend extends Context.Tag("pantheon-persistence/StoreBackend")<StoreBackend, StoreBackendShape>() {}
