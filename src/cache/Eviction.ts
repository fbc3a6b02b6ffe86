/**
 * The eviction of a cache: its policy (`WindowTinyLfu`) and, for a cache with a finite bound on its
 * number of entries, the duel that picks LRU or W-TinyLFU (`PolicyDuel`). The one place where a
 * request reaches both, in the policy's own sequence (`access`, then `put` once the value is in):
 * the cache and the tests' replays go through here, the duel's shadows through the same policy calls.
 */
import { type EvictionPolicy, PolicyDuel } from "./PolicyDuel.js"
import { type PolicyNode, Region, WindowTinyLfu, type WindowTinyLfuOptions } from "./WindowTinyLfu.js"

export class Eviction<N extends PolicyNode<N>> {
  readonly policy: WindowTinyLfu<N>
  /** Chooses between LRU and W-TinyLFU; none for a cache with no finite bound on its count (always W-TinyLFU). */
  readonly duel: PolicyDuel | null

  constructor(options: WindowTinyLfuOptions<N> & { readonly duelRandom?: () => number }) {
    this.policy = new WindowTinyLfu(options)
    const bounded = Number.isFinite(this.policy.maximumEntries) && Number.isFinite(this.policy.maximum)
    this.duel = bounded ? new PolicyDuel(this.policy, options.duelRandom) : null
  }

  /** One request for the key with this hash; `node` is its entry when the cache serves it from one (a hit). */
  request(hash: number, node: N | undefined): void {
    this.policy.access(hash, node)
    // An entry not held yet (loading) weighs what a typical one does, as a miss's value would.
    if (this.duel !== null) this.duel.observe(hash, node !== undefined, node === undefined || node.region === Region.None ? this.policy.typicalWeight() : node.weight)
  }

  /** The entry's value is in: added or reweighed, then the bounds are enforced (evicted entries go to `onEvict`). */
  put(node: N, weight: number): void {
    this.policy.put(node, weight)
  }

  /** The entry leaves without being evicted (invalidated, expired). */
  remove(node: N): void {
    this.policy.remove(node)
  }

  /** Every entry leaves at once (invalidated), not evicted. */
  clear(): void {
    this.policy.clear()
  }

  get current(): EvictionPolicy {
    return this.duel?.current ?? "w-tinylfu"
  }
}
