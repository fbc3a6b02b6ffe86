/**
 * The catalog as a value: one read of a backend's sources, with its descriptors in catalog order
 * and looked up by manager key (one manager) and by source id (every manager of a source: two
 * managers with one name both serve that source). A source id is what requests, events and
 * invalidation speak of; a manager key is what the manager cache holds a manager under. Pure.
 */
import { Either } from "effect"
import { StoreNotFound } from "./errors.js"
import { SourceAdded, SourceChanged, SourceRemoved, type StoreEvent } from "./events.js"
import { managerKey, type StoreDescriptor } from "./schemas.js"

export interface Catalog<D extends StoreDescriptor = StoreDescriptor> {
  /** Every manager's descriptor, in catalog order. */
  readonly descriptors: ReadonlyArray<D>
  /** The descriptor of the manager with this key (`managerKey`). */
  readonly byKey: (key: string) => D | undefined
  /** The descriptors of a source's managers, in catalog order (none: the source is not in the catalog). */
  readonly bySource: (id: string) => ReadonlyArray<D>
  /** The source ids, in the order of their first manager. */
  readonly sources: ReadonlyArray<string>
}

export const makeCatalog = <D extends StoreDescriptor>(descriptors: ReadonlyArray<D>): Catalog<D> => {
  const keys = new Map<string, D>()
  const sources = new Map<string, Array<D>>()
  for (const d of descriptors) {
    keys.set(managerKey(d), d)
    const managers = sources.get(d.id)
    if (managers === undefined) sources.set(d.id, [d])
    else managers.push(d)
  }
  return {
    descriptors,
    byKey: (key) => keys.get(key),
    bySource: (id) => sources.get(id) ?? [],
    sources: [...sources.keys()]
  }
}

/** The descriptor of the manager with this key, or `StoreNotFound` naming it. */
export const findManager = <D extends StoreDescriptor>(catalog: Catalog<D>, key: string): Either.Either<D, StoreNotFound> => {
  const descriptor = catalog.byKey(key)
  return descriptor === undefined ? Either.left(new StoreNotFound({ id: key })) : Either.right(descriptor)
}

/**
 * A source's version in a catalog: its manager's `fingerprint` when it has one manager; with
 * several, every manager's key and fingerprint (adding or dropping one changes the source).
 */
export const sourceFingerprint = (catalog: Catalog, id: string): string | undefined => {
  const managers = catalog.bySource(id)
  if (managers.length <= 1) return managers[0]?.fingerprint
  return JSON.stringify(managers.map((d) => [managerKey(d), d.fingerprint ?? null]))
}

/** The events, by source id, that turn one catalog read into the next, in the order of the new one (removals last). */
export const diffCatalogs = (before: Catalog | undefined, after: Catalog): Array<StoreEvent> => {
  if (before === undefined) return []
  const events: Array<StoreEvent> = []
  for (const id of after.sources) {
    const fingerprint = sourceFingerprint(after, id)
    const version = fingerprint === undefined ? {} : { fingerprint }
    if (before.bySource(id).length === 0) events.push(SourceAdded.make({ id, ...version }))
    else if (sourceFingerprint(before, id) !== fingerprint) events.push(SourceChanged.make({ id, ...version }))
  }
  for (const id of before.sources) if (after.bySource(id).length === 0) events.push(SourceRemoved.make({ id }))
  return events
}
