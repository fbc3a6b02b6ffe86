/**
 * A count-min sketch of how often each key was asked for, with periodic halving so that old
 * popularity fades: the admission filter of W-TinyLFU (Einziger, Friedman & Manes, 2017).
 * Four counters a key, each capped at 15; memory is `4 × width` bytes, whatever the number of keys.
 */
export class FrequencySketch {
  private readonly table: Uint8Array
  private readonly mask: number
  private additions = 0
  private readonly resetAt: number

  constructor(capacity: number) {
    let width = 16
    while (width < capacity * 2 && width < 1 << 24) width <<= 1
    this.table = new Uint8Array(width * 4)
    this.mask = width - 1
    this.resetAt = Math.max(10 * capacity, 16)
  }

  /** Records one access; returns the key's hash for `frequency`. */
  increment(key: string): number {
    const h = hash(key)
    let added = false
    for (let i = 0; i < 4; i++) {
      const index = this.index(h, i)
      if (this.table[index] < 15) {
        this.table[index]++
        added = true
      }
    }
    if (added && ++this.additions >= this.resetAt) this.halve()
    return h
  }

  /** Estimated accesses of `key` (an upper bound, exact unless it collides in all four rows). */
  frequency(key: string): number {
    const h = hash(key)
    let min = 15
    for (let i = 0; i < 4; i++) min = Math.min(min, this.table[this.index(h, i)])
    return min
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

/** FNV-1a, 32 bits, with a final avalanche so that similar ids spread. */
const hash = (key: string): number => {
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
