/**
 * A count-min sketch of how often each key was asked for: the admission filter of W-TinyLFU [1].
 *
 * Four counters a key (one in each of four rows, by double hashing), each of 4 bits' worth (capped
 * at 15); a key's frequency is the smallest of its four counters, an over-estimate only when it
 * collides with other keys in every row. Every `10 × capacity` increments all counters are halved,
 * so that what was popular long ago fades ("aging", the reset of [1]). Memory is `4 × width` bytes
 * whatever the number of keys; the width grows with the cache (`ensureCapacity`).
 *
 * [1] Einziger, Friedman & Manes, "TinyLFU: A Highly Efficient Cache Admission Policy", ACM ToS 2017.
 */
import { Hash } from "effect"

/** A counter saturates at 15: the paper's 4-bit counters; frequencies above that rank alike. */
const MAX_COUNT = 15
/** Increments between two halvings, per unit of capacity (the "sample size" W of [1]). */
const SAMPLE_FACTOR = 10
/** The widest table: 16 M counters a row (64 MiB), far beyond any cache this project builds. */
const MAX_WIDTH = 1 << 24

export class FrequencySketch {
  private table = new Uint8Array(0)
  private mask = 0
  private additions = 0
  private resetAt = 0
  private capacityHint = 0

  constructor(capacity: number) {
    this.resize(capacity)
  }

  /** Grows the table when the cache holds more keys than it was sized for (counts are lost, as in Caffeine); true if it grew. */
  ensureCapacity(capacity: number): boolean {
    if (capacity * 2 <= this.mask + 1 || this.mask + 1 >= MAX_WIDTH) return false
    this.resize(capacity)
    return true
  }

  /** How many keys the table is sized for. */
  get capacity(): number {
    return this.capacityHint
  }

  /** Increments between halvings: the number of requests over which frequencies are compared. */
  get sampleSize(): number {
    return this.resetAt
  }

  /** Records one access of the key (its hash: see `hashKey`). */
  increment(h: number): void {
    let added = false
    for (let row = 0; row < 4; row++) {
      const index = this.index(h, row)
      if (this.table[index] < MAX_COUNT) {
        this.table[index]++
        added = true
      }
    }
    if (added && ++this.additions >= this.resetAt) this.halve()
  }

  /** Estimated accesses of the key since the last halving (an upper bound, at most 15). */
  frequency(h: number): number {
    let min = MAX_COUNT
    for (let row = 0; row < 4; row++) min = Math.min(min, this.table[this.index(h, row)])
    return min
  }

  private resize(capacity: number): void {
    let width = 16
    while (width < capacity * 2 && width < MAX_WIDTH) width <<= 1
    this.table = new Uint8Array(width * 4)
    this.mask = width - 1
    this.additions = 0
    this.capacityHint = Math.max(1, Math.floor(capacity))
    this.resetAt = Math.max(SAMPLE_FACTOR * this.capacityHint, 16)
  }

  private index(h: number, row: number): number {
    // Double hashing: row i uses h1 + i·h2; each row has its own stripe of the table.
    const h2 = ((h >>> 16) | 1) * 0x9e3779b1
    return row * (this.mask + 1) + (((h + Math.imul(row, h2)) >>> 0) & this.mask)
  }

  private halve(): void {
    for (let i = 0; i < this.table.length; i++) this.table[i] >>= 1
    this.additions = Math.floor(this.additions / 2)
  }
}

/** A key's 32-bit hash: FNV-1a with a final avalanche for strings, Effect's `Hash` for anything else. */
export const hashKey = (key: unknown): number => {
  if (typeof key !== "string") return Hash.hash(key) >>> 0
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  return h >>> 0
}
