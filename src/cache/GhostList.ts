/**
 * The hashes of the last `capacity` keys a region evicted, with no values: a "ghost" list, as ARC
 * keeps [1]. A request for a key found here is a hit the region would have had with a little more
 * room. 32-bit hashes in a ring (8 bytes a slot plus a map entry), held as signed integers (small
 * integers to V8, where unsigned ones above 2^31 are boxed numbers); a collision only nudges the
 * window, it never serves a value.
 *
 * [1] Megiddo & Modha, "ARC: A Self-Tuning, Low Overhead Replacement Cache", FAST 2003.
 */
export class GhostList {
  private hashes = new Int32Array(0)
  private stamps = new Float64Array(0)
  private head = 0
  private size = 0
  private stamp = 0
  /** hash → the stamp of its newest slot: older slots of the same hash are stale. */
  private readonly live = new Map<number, number>()

  constructor(capacity: number) {
    this.resize(capacity)
  }

  /** Starts over with room for `capacity` hashes. */
  resize(capacity: number): void {
    const slots = Math.max(1, Math.ceil(capacity))
    this.hashes = new Int32Array(slots)
    this.stamps = new Float64Array(slots)
    this.head = this.size = 0
    this.live.clear()
  }

  /** Records an eviction; the oldest one is forgotten when full. */
  push(hash: number): void {
    const key = hash | 0
    const slots = this.hashes.length
    if (this.size === slots) {
      const oldest = this.hashes[this.head]!
      if (this.live.get(oldest) === this.stamps[this.head]) this.live.delete(oldest)
      this.head = (this.head + 1) % slots
      this.size--
    }
    const tail = (this.head + this.size) % slots
    this.hashes[tail] = key
    this.stamps[tail] = this.stamp
    this.live.set(key, this.stamp++)
    this.size++
  }

  /** Whether the hash was evicted recently; it is forgotten either way (one vote per eviction). */
  take(hash: number): boolean {
    return this.live.delete(hash | 0)
  }

  clear(): void {
    this.head = this.size = 0
    this.live.clear()
  }
}
