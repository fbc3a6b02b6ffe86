/**
 * Query results of the SQL stores, kept while the source's data is unchanged: every write through
 * this process (and, on a server, every write another instance announces) bumps the source's data
 * version, which retires its results at once; `ttl` bounds how long a result may live in any case
 * (writes made behind the library's back are seen after at most `ttl`). LRU, at most `capacity`
 * result sets.
 */
export class ResultCache<A> {
  private readonly entries = new Map<string, { readonly version: number; readonly expiresAt: number; readonly value: A }>()
  private readonly versions = new Map<string, number>()
  hits = 0
  misses = 0

  constructor(
    readonly capacity: number,
    readonly ttlMs: number
  ) {}

  /** The source's data changed: its cached results are no longer served. */
  bump(source: string): void {
    this.versions.set(source, (this.versions.get(source) ?? 0) + 1)
  }

  /** Every source's data may have changed (e.g. a lost notification channel). */
  bumpAll(): void {
    for (const source of this.versions.keys()) this.bump(source)
    this.entries.clear()
  }

  get(source: string, key: string, now: number): A | undefined {
    const k = `${source}\u0000${key}`
    const entry = this.entries.get(k)
    if (entry !== undefined && entry.version === (this.versions.get(source) ?? 0) && now < entry.expiresAt) {
      this.entries.delete(k)
      this.entries.set(k, entry)
      this.hits++
      return entry.value
    }
    if (entry !== undefined) this.entries.delete(k)
    this.misses++
    return undefined
  }

  set(source: string, key: string, value: A, now: number, version = this.versions.get(source) ?? 0): void {
    if (this.capacity <= 0) return
    const k = `${source}\u0000${key}`
    this.entries.delete(k)
    this.entries.set(k, { version, expiresAt: now + this.ttlMs, value })
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string)
  }

  /** The data version a query starts from: a result is stored under it, so a write meanwhile retires it. */
  version(source: string): number {
    return this.versions.get(source) ?? 0
  }

  get size(): number {
    return this.entries.size
  }
}
