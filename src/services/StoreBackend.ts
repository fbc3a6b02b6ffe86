import { Context, Effect, Layer } from "effect"
import type { CatalogUnavailable, InvalidSourceId, StoreUnavailable } from "../domain/errors.js"
import type { StoreDescriptor } from "../domain/schemas.js"
import type { StoreManager } from "./StoreManager.js"

/**
 * What a backend (embedded PGlite, a PostgreSQL server, the caller's Promise managers) provides:
 * the catalog of sources and the factory that opens a source's manager. Callers go through
 * `StoreManagerRegistry`, which caches the catalog, and `ManagerCache`, which caches the managers.
 * Changes travel on `StoreEvents`, which every backend layer provides too.
 *
 * A backend has a descriptor type of its own (`D`: the SQL store's says where a source's entries
 * live): `open` is handed only descriptors its own `catalog` listed, so it reads them as `D`.
 */
export interface StoreBackendShape<D extends StoreDescriptor = StoreDescriptor> {
  /** Every source the backend has, in catalog order. Uncached: the registry caches it. */
  readonly catalog: Effect.Effect<ReadonlyArray<D>, CatalogUnavailable>
  /**
   * Opens the manager of a descriptor of this backend's catalog: the expensive call the cache
   * exists to avoid. (A method, so that a backend of `D` is a `StoreBackendShape` of any
   * descriptor: the registry only hands back what the same backend listed.)
   */
  open(descriptor: D, options: OpenOptions): Effect.Effect<StoreManager, StoreUnavailable | InvalidSourceId>
}

export interface OpenOptions {
  /** The byte budget of the manager cache: a backend that can hold a source in memory (warm) keeps within it. */
  readonly warmBytes: number
}

export class StoreBackend extends Context.Tag("pantheon-persistence/StoreBackend")<StoreBackend, StoreBackendShape>() {
  /** A backend over descriptors of its own type `D`. */
  static readonly make = <D extends StoreDescriptor>(backend: StoreBackendShape<D>): StoreBackendShape => backend
  /** The backend `make` builds (a value, or an effect that builds it from its dependencies). */
  static readonly layer = <D extends StoreDescriptor, E = never, R = never>(
    make: StoreBackendShape<D> | Effect.Effect<StoreBackendShape<D>, E, R>
  ): Layer.Layer<StoreBackend, E, R> =>
    Effect.isEffect(make) ? Layer.effect(StoreBackend, Effect.map(make, StoreBackend.make)) : Layer.succeed(StoreBackend, StoreBackend.make(make))
}
