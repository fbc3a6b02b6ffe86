/**
 * The entries of a cache: the key → entry map and the eviction policy, changed together here and
 * nowhere else, so that an entry is in the map exactly while the policy or a load knows it. Every
 * held value that leaves (evicted by the policy, removed with a cause, replaced) is reported to
 * `onRemoved`, once.
 */
import * as EntryState from "./EntryState.js"
import { Eviction } from "./Eviction.js"
import type { RemovalCause } from "./Removal.js"
import { Region, type PolicyNode } from "./WindowTinyLfu.js"

export interface Entry<K, V, E> extends PolicyNode<Entry<K, V, E>> {
  readonly key: K
  state: EntryState.State<V, E>
  /** Why the entry left the cache, once it has (a load that ends later reports its value with the same cause). */
  removedBy: RemovalCause | undefined
}

export interface EntriesOptions<K, V> {
  /** The bound on the total weight, and on the number of entries. */
  readonly maximum: number
  readonly maximumEntries: number
  readonly weighted: boolean
  /** A held value left the cache. */
  readonly onRemoved: (key: K, value: V, cause: RemovalCause) => void
}

export class Entries<K, V, E> {
  private readonly map = new Map<K, Entry<K, V, E>>()
  readonly eviction: Eviction<Entry<K, V, E>>
  private readonly onRemoved: (key: K, value: V, cause: RemovalCause) => void

  constructor(options: EntriesOptions<K, V>) {
    this.onRemoved = options.onRemoved
    this.eviction = new Eviction<Entry<K, V, E>>({
      maximum: options.maximum,
      maximumEntries: options.maximumEntries,
      weighted: options.weighted,
      onEvict: (entry) => this.unmap(entry, "evicted")
    })
  }

  find(key: K): Entry<K, V, E> | undefined {
    return this.map.get(key)
  }

  /** A new entry for `key` in `state` (it replaces none: the caller found none, or removed it). */
  create(key: K, hash: number, state: EntryState.State<V, E>): Entry<K, V, E> {
    const entry: Entry<K, V, E> = { key, hash, state, removedBy: undefined, weight: 0, region: Region.None, prev: null, next: null }
    this.map.set(key, entry)
    return entry
  }

  /** Whether `entry` is still the key's entry and, given `state`, still in it (a load's result is kept only then). */
  isCurrent(entry: Entry<K, V, E>, state?: EntryState.State<V, E>): boolean {
    return this.map.get(entry.key) === entry && (state === undefined || entry.state === state)
  }

  /** A request for the key with this hash, served from `entry` when given (a hit): see `Eviction.request`. */
  request(hash: number, entry: Entry<K, V, E> | undefined): void {
    this.eviction.request(hash, entry)
  }

  /** The entry now holds `ready` of `weight`; the value it held before, if another, is reported replaced. May evict (this entry too). */
  hold(entry: Entry<K, V, E>, ready: EntryState.Ready<V>, weight: number): void {
    const before = entry.region === Region.None ? undefined : EntryState.held(entry.state)
    entry.state = ready
    if (before !== undefined && !Object.is(before.value, ready.value)) this.onRemoved(entry.key, before.value, "replaced")
    this.eviction.put(entry, weight)
  }

  /** Removes the entry from the map and the policy; the value it held is reported with `cause` (`null`: nothing to report, a failure forgotten). */
  remove(entry: Entry<K, V, E>, cause: RemovalCause | null): void {
    const held = entry.region !== Region.None
    this.eviction.remove(entry)
    if (held && cause !== null) this.unmap(entry, cause)
    else {
      entry.removedBy = cause ?? undefined
      if (this.map.get(entry.key) === entry) this.map.delete(entry.key)
    }
  }

  /** Removes every entry (the policy forgets its ghosts too); each held value is reported with `cause`. */
  clear(cause: RemovalCause): void {
    const entries = [...this.map.values()]
    this.map.clear()
    for (const entry of entries) {
      entry.removedBy = cause
      const value = entry.region === Region.None ? undefined : EntryState.held(entry.state)
      if (value !== undefined) this.onRemoved(entry.key, value.value, cause)
    }
    this.eviction.clear()
  }

  /** Entries holding a value, in the policy's order (window, probation, protected; least recent first). */
  held(): IterableIterator<Entry<K, V, E>> {
    return this.eviction.policy.nodes()
  }

  /** Every entry, loading or failed ones too. */
  all(): Array<Entry<K, V, E>> {
    return [...this.map.values()]
  }

  get count(): number {
    return this.eviction.policy.count
  }

  get weight(): number {
    return this.eviction.policy.weightedSize
  }

  private unmap(entry: Entry<K, V, E>, cause: RemovalCause): void {
    entry.removedBy = cause
    if (this.map.get(entry.key) === entry) this.map.delete(entry.key)
    const value = EntryState.held(entry.state)
    if (value !== undefined) this.onRemoved(entry.key, value.value, cause)
  }
}
