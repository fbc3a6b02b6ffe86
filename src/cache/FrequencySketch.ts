/**
 * A count-min sketch of how often each key was asked for: the admission filter of W-TinyLFU [1].
 *
 * Four counters a key, each capped at 15 (the paper's 4-bit counters); a key's frequency is the
 * smallest of its four, an over-estimate only when it collides with other keys on all four. The
 * four counters of a key lie in one 64-byte block (one cache line), one in each 16-counter quarter
 * of it, as Caffeine's block layout [2]: an increment touches one line instead of four. Every
 * `10 × capacity` increments all counters are halved, so that what was popular long ago fades
 * ("aging", the reset of [1]). The table has `COUNTERS_PER_KEY` one-byte counters for each key the
 * cache is sized for (rounded up to a power of two blocks), whatever the number of keys seen; it
 * grows with the cache (`ensureCapacity`).
 *
 * [1] Einziger, Friedman & Manes, "TinyLFU: A Highly Efficient Cache Admission Policy", ACM ToS 2017.
 * [2] Caffeine, `FrequencySketch` ("the counters of an element are in one cache line").
 */
import { Hash } from "effect"
import { fnv1a } from "../hash.js"

/** A counter saturates at 15: the paper's 4-bit counters; frequencies above that rank alike. */
const MAX_COUNT = 15
/** Increments between two halvings, per unit of capacity (the "sample size" W of [1]). */
const SAMPLE_FACTOR = 10
/** A block: 64 one-byte counters (a cache line), four quarters of 16. */
const BLOCK = 64
/**
 * Counters a key the cache is sized for. Fewer counters mean more keys sharing all four of theirs,
 * so a cold candidate looks as warm as a hot victim. Measured (bench w3's public traces, W-TinyLFU
 * with a fixed 1 % window), 8 / 16 / 32 counters a key: sprite at 200 entries 48.2 / 49.3 / 49.8 %,
 * cpp at 50 56.3 / 57.1 / 56.8 %, gli at 500 32.9 / 32.0 / 33.5 % (the duel's early switch
 * reads the sketch too). 32 bytes a key: 10,000 entries cost 512 KiB.
 */
const COUNTERS_PER_KEY = 32
/** The most blocks: 2^18 (16 MiB), far beyond any cache this project builds. */
const MAX_BLOCKS = 1 << 18

export class FrequencySketch {
  private table = new Uint8Array(0)
  private blockMask = 0
  private additions = 0
  private resetAt = 0
  private capacityHint = 0

  constructor(capacity: number) {
    this.resize(capacity)
  }

  /** Grows the table when the cache holds more keys than it was sized for (counts are lost, as in Caffeine); true if it grew. */
  ensureCapacity(capacity: number): boolean {
    const blocks = this.blockMask + 1
    if (capacity * COUNTERS_PER_KEY <= blocks * BLOCK || blocks >= MAX_BLOCKS) return false
    this.resize(capacity)
    return true
  }

  /** How many keys the table is sized for. */
  get capacity(): number {
    return this.capacityHint
  }

  /** Records one access of the key (its hash: see `hashKey`). */
  increment(h: number): void {
    const table = this.table
    const block = this.blockOf(h)
    const spread = Math.imul(h, 0x9e3779b1)
    // Quarter i of the block, counter (spread >>> 4i) & 15 within it.
    const i0 = block + (spread & 15)
    const i1 = block + 16 + ((spread >>> 4) & 15)
    const i2 = block + 32 + ((spread >>> 8) & 15)
    const i3 = block + 48 + ((spread >>> 12) & 15)
    let added = false
    if (table[i0]! < MAX_COUNT) (table[i0]++, (added = true))
    if (table[i1]! < MAX_COUNT) (table[i1]++, (added = true))
    if (table[i2]! < MAX_COUNT) (table[i2]++, (added = true))
    if (table[i3]! < MAX_COUNT) (table[i3]++, (added = true))
    if (added && ++this.additions >= this.resetAt) this.halve()
  }

  /** Estimated accesses of the key since the last halving (an upper bound, at most 15). */
  frequency(h: number): number {
    const table = this.table
    const block = this.blockOf(h)
    const spread = Math.imul(h, 0x9e3779b1)
    return Math.min(
      table[block + (spread & 15)]!,
      table[block + 16 + ((spread >>> 4) & 15)]!,
      table[block + 32 + ((spread >>> 8) & 15)]!,
      table[block + 48 + ((spread >>> 12) & 15)]!
    )
  }

  /** The key's block, from the hash's high bits (the counters use the low bits of another mix). */
  private blockOf(h: number): number {
    return (((h >>> 16) ^ Math.imul(h, 0x85ebca6b)) & this.blockMask) * BLOCK
  }

  private resize(capacity: number): void {
    let blocks = 1
    while (blocks * BLOCK < capacity * COUNTERS_PER_KEY && blocks < MAX_BLOCKS) blocks <<= 1
    this.table = new Uint8Array(blocks * BLOCK)
    this.blockMask = blocks - 1
    this.additions = 0
    this.capacityHint = Math.max(1, Math.floor(capacity))
    this.resetAt = Math.max(SAMPLE_FACTOR * this.capacityHint, 16)
  }

  private halve(): void {
    for (let i = 0; i < this.table.length; i++) this.table[i] >>= 1
    this.additions = Math.floor(this.additions / 2)
  }
}

/**
 * A key's 32-bit hash, as a signed integer (a small integer to V8, where an unsigned one above 2^31
 * is a boxed number: the maps keyed by hashes read twice as fast): FNV-1a with a final avalanche for
 * strings, Effect's `Hash` for anything else.
 */
export const hashKey = (key: unknown): number => {
  if (typeof key !== "string") return Hash.hash(key) | 0
  let h = fnv1a(key)
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  return h | 0
}
