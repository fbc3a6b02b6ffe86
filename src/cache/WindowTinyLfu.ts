/**
 * The eviction policy of the cache engine: adaptive Window TinyLFU, after Caffeine [1][2].
 *
 * Regions
 * - A new entry enters the **window**, a small LRU: an entry with only recent use lives here.
 * - Leaving the window, it becomes a **candidate** at the tail of **probation** (the main region's
 *   LRU for entries not used again there). While the cache is over its bound, the candidate
 *   competes with probation's **victim** (its LRU head): the count-min sketch estimates how often
 *   each was asked for and the less frequent one is evicted; on a tie the victim stays [2].
 * - A hit in probation promotes the entry to **protected** (80 % of the main region), whose LRU
 *   overflow is demoted back to probation. Probation and protected form a segmented LRU.
 *
 * Climbing the window size
 * The best split is workload dependent: recency-heavy traffic (a working set that moves, bursts)
 * wants a large window, frequency-heavy traffic (a stable popular set, scans) a small one [3]. The
 * split starts at 1 % / 99 % and climbs the hit-rate curve along its measured slope: each region
 * keeps the hashes of what it evicted last (a ghost list of `GHOST_SHARE` of the capacity). A
 * request for a key the window's overflow lost is a hit a slightly larger window would have had,
 * so the window grows by one entry's weight; a request for a key the main region evicted shrinks
 * it by as much. The two probes are the same size, so the window moves to where the marginal hits
 * of both regions balance. Caffeine's climber estimates that slope by comparing the hit rates of
 * successive samples; measured on our traces (bench w3) that signal is drowned by sampling noise
 * in caches of a few hundred entries and left the policy up to 3 points below LRU on recency
 * traces, where the ghost probes keep it within half a point and keep the frequency wins.
 *
 * Even so, where only recency predicts reuse any main region costs a few hits against a plain LRU;
 * `useLru` turns the whole cache into the window (an LRU), and a cache with a count bound runs W-TinyLFU
 * only while a duel with a shadow LRU says it hits more (`PolicyDuel.ts`), its window then capped
 * (`limitWindow`).
 *
 * Hash flooding: an attacker who makes the victim look popular would have every candidate refused.
 * A candidate that is at least warm is admitted anyway with a small random chance (jitter) [1].
 *
 * Bounds: a maximum total weight (with no weigher every entry weighs 1, so it is a count) and,
 * optionally, a maximum number of entries as well; an entry heavier than the maximum is evicted at
 * once. Everything here is synchronous, and a hit allocates nothing.
 *
 * [1] Caffeine, `BoundedLocalCache` (design notes "Eviction"; `admit`, `evictFromMain`, `climb`).
 * [2] Einziger, Friedman & Manes, "TinyLFU: A Highly Efficient Cache Admission Policy", ACM ToS 2017.
 * [3] Einziger, Eytan, Friedman & Manes, "Adaptive Software Cache Management", Middleware 2018.
 */
import { AccessOrder, type Linked } from "./AccessOrder.js"
import { FrequencySketch } from "./FrequencySketch.js"
import { GhostList } from "./GhostList.js"

/** The window's initial share of the maximum: Caffeine's 1 %, best for frequency-heavy traffic. */
const PERCENT_WINDOW = 0.01
/** The protected segment's share of the main region. */
const PERCENT_MAIN_PROTECTED = 0.8
/** The main region never shrinks below this share: the frequency filter keeps a foothold. */
const MIN_PERCENT_MAIN = 0.01
/** Each ghost list remembers evictions worth this share of the capacity: the slope probe's width (10 %: the best balance of the Zipf and recency traces, w3). */
const GHOST_SHARE = 0.1
/** A candidate at least this frequent may be admitted at random against a hotter victim (max count 15, 7 after aging). */
const ADMIT_HASHDOS_THRESHOLD = 6
/** The chance of that random admission: rare enough to cost almost no hit rate. */
const ADMIT_JITTER = 1 / 128

export const Region = { None: 0, Window: 1, Probation: 2, Protected: 3 } as const
export type Region = (typeof Region)[keyof typeof Region]

/** What the policy needs of an entry: its key's hash, its weight, its region and its links. */
export interface PolicyNode<N> extends Linked<N> {
  readonly hash: number
  weight: number
  region: Region
}

export interface WindowTinyLfuOptions<N> {
  /** The bound on the total weight (the number of entries when every entry weighs 1). */
  readonly maximum: number
  /** A bound on the number of entries as well (default: none beyond `maximum`). */
  readonly maximumEntries?: number
  /** Whether entries have weights of their own (then the sketch and the ghosts grow with the number of entries). */
  readonly weighted?: boolean
  /** Called for each entry the policy evicts, after it has left every region. */
  readonly onEvict: (node: N) => void
  /** For the admission jitter; `Math.random` by default. */
  readonly random?: () => number
  /** A frequency sketch to read instead of one of its own (a shadow of this policy shares the cache's: `PolicyDuel.ts`). */
  readonly sketch?: FrequencySketch
}

export class WindowTinyLfu<N extends PolicyNode<N>> {
  readonly sketch: FrequencySketch
  private held = 0
  private total = 0
  private windowShare: number
  private protectedShare: number
  private lruOnly = false
  /** The most the window may climb to (see `limitWindow`). */
  private windowLimit = Infinity
  /** Whether `access` counts the request in the sketch (a shadow reads the cache's sketch, which the cache counts). */
  private readonly counts: boolean
  readonly maximum: number
  readonly maximumEntries: number
  readonly weighted: boolean
  private readonly window = new AccessOrder<N>()
  private readonly probation = new AccessOrder<N>()
  private readonly protected = new AccessOrder<N>()
  private windowWeight = 0
  private protectedWeight = 0
  /** Keys the window's overflow lost (refused at admission) and keys the main region evicted. */
  private readonly windowGhosts: GhostList
  private readonly mainGhosts: GhostList
  private readonly onEvict: (node: N) => void
  private readonly random: () => number

  constructor(options: WindowTinyLfuOptions<N>) {
    this.maximum = Math.max(0, options.maximum)
    this.maximumEntries = options.maximumEntries ?? Infinity
    this.weighted = options.weighted ?? false
    this.windowShare = Math.max(Math.min(1, this.maximum), Math.ceil(PERCENT_WINDOW * this.maximum))
    this.protectedShare = Math.floor(PERCENT_MAIN_PROTECTED * (this.maximum - this.windowShare))
    const entries = this.weighted ? Math.min(this.maximumEntries, 16) : Math.min(this.maximum, this.maximumEntries)
    this.sketch = options.sketch ?? new FrequencySketch(Number.isFinite(entries) ? entries : 16)
    this.counts = options.sketch === undefined
    this.windowGhosts = new GhostList(this.ghostCapacity())
    this.mainGhosts = new GhostList(this.ghostCapacity())
    this.onEvict = options.onEvict
    this.random = options.random ?? Math.random
  }

  /** Whether the window takes the whole cache (plain LRU, no admission, no climbing): see `useLru`. */
  get lru(): boolean {
    return this.lruOnly
  }

  /** Total weight of the entries held. */
  get weightedSize(): number {
    return this.total
  }

  /** Number of the entries held. */
  get count(): number {
    return this.held
  }

  /** The window's share of `maximum` (the rest is the main region), as the climbing left it. */
  get windowMaximum(): number {
    return this.windowShare
  }

  get protectedMaximum(): number {
    return this.protectedShare
  }

  // The call sequence every user of the policy follows (the cache, the duel's shadows, the tests'
  // replays): `access` for each request, then `put` once the requested entry's value is in.

  /**
   * One request for the key with this hash, `node` being its entry if the policy holds one (a hit):
   * counts it in the sketch, then reorders the entry, or on a miss probes the ghost lists.
   */
  access(hash: number, node: N | undefined): void {
    if (this.counts) this.sketch.increment(hash)
    if (node === undefined || node.region === Region.None) this.onMiss(hash)
    else this.onHit(node)
  }

  /** The entry's value is in (a load's, a write's): it is added, or reweighed if held; then the bounds are enforced (possibly evicting it). */
  put(node: N, weight: number): void {
    if (node.region === Region.None) this.add(node, weight)
    else this.reweigh(node, weight)
  }

  /** A request that found nothing to serve: if a region evicted the key lately, that region wanted more room. */
  private onMiss(hash: number): void {
    if (this.lruOnly) return
    if (this.windowGhosts.take(hash)) this.increaseWindow(this.typicalWeight())
    else if (this.mainGhosts.take(hash)) this.decreaseWindow(this.typicalWeight())
  }

  /** A request served by `node`: reorders it. */
  private onHit(node: N): void {
    switch (node.region) {
      case Region.Window:
        this.window.moveToBack(node)
        return
      case Region.Probation:
        if (node.weight > this.protectedShare) {
          this.probation.moveToBack(node)
        } else {
          this.transfer(node, Region.Protected)
          this.demoteFromProtected()
        }
        return
      case Region.Protected:
        this.protected.moveToBack(node)
        return
    }
  }

  /** A new entry: enters the window, then the cache evicts down to its bounds (possibly this entry). */
  private add(node: N, weight: number): void {
    node.weight = weight
    node.region = Region.Window
    this.window.append(node)
    this.windowWeight += weight
    this.total += weight
    this.held++
    if (this.weighted && this.sketch.ensureCapacity(this.held)) {
      this.windowGhosts.resize(this.ghostCapacity())
      this.mainGhosts.resize(this.ghostCapacity())
    }
    this.evict(node)
  }

  /** The entry's value changed weight (a reload): the bounds are enforced again. */
  private reweigh(node: N, weight: number): void {
    const delta = weight - node.weight
    if (delta === 0 || node.region === Region.None) return
    node.weight = weight
    this.total += delta
    if (node.region === Region.Window) this.windowWeight += delta
    else if (node.region === Region.Protected) this.protectedWeight += delta
    this.demoteFromProtected()
    this.evict(node)
  }

  /**
   * Serves as a plain LRU: the window takes the whole cache, so nothing is refused admission and
   * the least recently used entry is evicted. The main region's entries join the window at its
   * least recently used end (protected after probation), and the window's size stops climbing.
   */
  useLru(): void {
    if (this.lruOnly) return
    this.lruOnly = true
    // Protected's share becomes 0, so its entries are demoted to probation's most recent end first.
    this.resizeWindow(this.maximum)
    for (let node = this.probation.last; node !== null; node = this.probation.last) {
      this.probation.remove(node)
      node.region = Region.Window
      this.window.prepend(node)
      this.windowWeight += node.weight
    }
  }

  /**
   * Serves as W-TinyLFU again, with a window of `windowMaximum` (its least recently used entries
   * move to probation). Given `regionOf` (where a W-TinyLFU that served all along would hold each
   * key: the duel's shadow), the entries are arranged as it holds them, and those it does not hold
   * go to probation's least recent end, the next evicted: W-TinyLFU starts where it would be, not
   * from an LRU's content (on a loop, that content is the part that comes back last).
   */
  useTinyLfu(windowMaximum: number, regionOf?: (hash: number) => Region): void {
    if (!this.lruOnly) return
    this.lruOnly = false
    this.resizeWindow(this.windowWithin(windowMaximum))
    if (regionOf !== undefined) this.arrangeAs(regionOf)
    this.evictFromWindow()
  }

  private arrangeAs(regionOf: (hash: number) => Region): void {
    const held = [...this.window]
    const regions = held.map((node) => regionOf(node.hash))
    // In recency order within each region: the ones it does not hold first, at probation's least recent end.
    for (const wanted of [Region.None, Region.Probation, Region.Protected]) {
      held.forEach((node, i) => {
        if (regions[i] === wanted) this.transfer(node, wanted === Region.Protected ? Region.Protected : Region.Probation)
      })
    }
    this.demoteFromProtected()
  }

  /**
   * Caps the window's climb at `share` of the maximum. For a duelled cache (`PolicyDuel.ts`): there
   * LRU is the other contender, so a window that climbs towards the whole cache only plays LRU
   * worse. Uncapped, the window rose to 196 of 200 entries on LIRS sprite and the cache flapped
   * between the two policies (43.7 % hits; 48.9 % capped at 20 %; published W-TinyLFU 49.7 %).
   */
  limitWindow(share: number): void {
    this.windowLimit = Math.max(1, Math.floor(share * this.maximum))
    if (!this.lruOnly && this.windowShare > this.windowLimit) this.decreaseWindow(this.windowShare - this.windowLimit)
  }

  /**
   * Starts over holding `arranged`: each node in the region paired with it (in that order, least
   * recently used first within a region; all in the window while this is an LRU), W-TinyLFU's
   * window at `windowMaximum`; then the bounds are enforced. The ghosts start empty. For a duel's
   * shadow taking over the cache's place when the cache changes policy (`PolicyDuel.ts`).
   */
  restore(arranged: Iterable<readonly [N, Region]>, windowMaximum: number): void {
    this.clear()
    if (!this.lruOnly) this.resizeWindow(this.windowWithin(windowMaximum))
    for (const [node, region] of arranged) {
      node.region = this.lruOnly ? Region.Window : region
      this.segment(node.region).append(node)
      if (node.region === Region.Window) this.windowWeight += node.weight
      else if (node.region === Region.Protected) this.protectedWeight += node.weight
      this.total += node.weight
      this.held++
    }
    this.demoteFromProtected()
    this.enforceBounds()
  }

  /** Removes the entry (invalidated or expired): not an eviction. */
  remove(node: N): void {
    if (node.region === Region.None) return
    this.unlink(node)
    this.total -= node.weight
    this.held--
    node.region = Region.None
  }

  clear(): void {
    for (const node of [...this.nodes()]) {
      node.prev = node.next = null
      node.region = Region.None
    }
    this.window.clear()
    this.probation.clear()
    this.protected.clear()
    this.total = this.held = this.windowWeight = this.protectedWeight = 0
    this.windowGhosts.clear()
    this.mainGhosts.clear()
  }

  /** The entries, window first (least recently used first), then probation, then protected. */
  *nodes(): IterableIterator<N> {
    yield* this.window
    yield* this.probation
    yield* this.protected
  }

  /** Each ghost list remembers `GHOST_SHARE` of the entries the cache holds (or is sized for). */
  private ghostCapacity(): number {
    const entries = this.weighted ? this.sketch.capacity : Math.min(this.maximum, this.maximumEntries)
    return GHOST_SHARE * (Number.isFinite(entries) ? entries : this.sketch.capacity)
  }

  private overflowing(): boolean {
    return this.total > this.maximum || this.held > this.maximumEntries
  }

  /** An average entry's weight, rounded (1 without weights): the window's step, and a shadow's guess for a value not loaded yet. */
  typicalWeight(): number {
    return this.weighted && this.held > 0 ? Math.max(1, Math.round(this.total / this.held)) : 1
  }

  /** Enforces the bounds after `changed` was added or reweighed. */
  private evict(changed: N): void {
    // As an LRU an entry that can never fit leaves at once (as W-TinyLFU, admission sees to it).
    if (this.lruOnly && changed.weight > this.maximum) this.evictAndAdvance(changed, null)
    this.enforceBounds()
  }

  /**
   * Evicts until the cache is within its bounds. As an LRU the least recently used leave, and no
   * ghost remembers them (nothing climbs while the cache is an LRU); as W-TinyLFU the window's
   * overflow becomes candidates against probation's victims (`evictFromMain`).
   */
  private enforceBounds(): void {
    if (this.lruOnly) {
      for (let node = this.window.first; node !== null && this.overflowing(); ) node = this.evictAndAdvance(node, null)
      return
    }
    const candidate = this.evictFromWindow()
    if (this.overflowing()) this.evictFromMain(candidate)
  }

  /** Moves the window's least recently used entries to probation while the window is too heavy; returns the first moved. */
  private evictFromWindow(): N | null {
    let first: N | null = null
    while (this.windowWeight > this.windowShare && this.window.first !== null) {
      const node = this.window.first
      this.transfer(node, Region.Probation)
      first ??= node
    }
    return first
  }

  /**
   * While over a bound, evicts the less frequent of the next candidate (entries that just left the
   * window, then the window itself) and the next victim (probation's LRU, then protected's, then the
   * window's), as Caffeine's `evictFromMain`.
   */
  private evictFromMain(firstCandidate: N | null): void {
    let candidate = firstCandidate
    let candidateRegion: Region = Region.Probation
    let victimRegion: Region = Region.Probation
    let victim = this.probation.first
    while (this.overflowing()) {
      if (candidate === null && candidateRegion === Region.Probation) {
        candidate = this.window.first
        candidateRegion = Region.Window
      }
      if (candidate === null && victim === null) {
        if (victimRegion === Region.Probation) {
          victim = this.protected.first
          victimRegion = Region.Protected
          continue
        }
        if (victimRegion === Region.Protected) {
          victim = this.window.first
          victimRegion = Region.Window
          continue
        }
        break
      }
      if (victim === null) {
        candidate = this.evictAndAdvance(candidate!, this.windowGhosts)
      } else if (candidate === null) {
        victim = this.evictAndAdvance(victim, this.mainGhosts)
      } else if (candidate === victim) {
        victim = this.evictAndAdvance(victim, this.mainGhosts)
        candidate = null
      } else if (candidate.weight > this.maximum) {
        candidate = this.evictAndAdvance(candidate, null)
      } else if (this.admit(candidate.hash, victim.hash)) {
        victim = this.evictAndAdvance(victim, this.mainGhosts)
        candidate = candidate.next
      } else {
        candidate = this.evictAndAdvance(candidate, this.windowGhosts)
      }
    }
  }

  private admit(candidate: number, victim: number): boolean {
    const candidateFrequency = this.sketch.frequency(candidate)
    if (candidateFrequency > this.sketch.frequency(victim)) return true
    return candidateFrequency >= ADMIT_HASHDOS_THRESHOLD && this.random() < ADMIT_JITTER
  }

  private evictAndAdvance(node: N, ghosts: GhostList | null): N | null {
    const next = node.next
    this.remove(node)
    ghosts?.push(node.hash)
    this.onEvict(node)
    return next
  }

  private demoteFromProtected(): void {
    while (this.protectedWeight > this.protectedShare && this.protected.first !== null) {
      this.transfer(this.protected.first, Region.Probation)
    }
  }

  /**
   * Grows the window at the expense of the main region (down to `MIN_PERCENT_MAIN`, so that
   * recency-only traffic can make the cache nearly an LRU; no further than `limitWindow` allows); the main region's least recently used
   * entries move into the window as far as the new share allows.
   */
  private increaseWindow(amount: number): void {
    let quota = Math.min(amount, this.maximum - this.windowShare - this.mainFloor(), this.windowLimit - this.windowShare)
    if (quota <= 0) return
    this.resizeWindow(this.windowShare + quota)
    for (;;) {
      let node = this.probation.first
      if (node === null || quota < node.weight) node = this.protected.first
      if (node === null || quota < node.weight) break
      quota -= node.weight
      this.transfer(node, Region.Window)
    }
  }

  /** A window of `windowMaximum`, rounded, as the bounds allow (at least one, the main region's floor left, within `limitWindow`). */
  private windowWithin(windowMaximum: number): number {
    return Math.max(1, Math.min(this.maximum - this.mainFloor(), this.windowLimit, Math.round(windowMaximum)))
  }

  /** The least the main region keeps while W-TinyLFU serves. */
  private mainFloor(): number {
    return Math.max(1, Math.floor(MIN_PERCENT_MAIN * this.maximum))
  }

  /** Shrinks the window in favour of the main region; the window's LRU entries move to probation. */
  private decreaseWindow(amount: number): void {
    const quota = Math.min(amount, this.windowShare - 1)
    if (quota <= 0) return
    this.resizeWindow(this.windowShare - quota)
    this.evictFromWindow()
  }

  /** Sets the window's share; protected keeps its share of the rest. */
  private resizeWindow(windowMaximum: number): void {
    this.windowShare = windowMaximum
    this.protectedShare = Math.floor(PERCENT_MAIN_PROTECTED * (this.maximum - windowMaximum))
    this.demoteFromProtected()
  }

  private segment(region: Region): AccessOrder<N> {
    return region === Region.Window ? this.window : region === Region.Probation ? this.probation : this.protected
  }

  private unlink(node: N): void {
    this.segment(node.region).remove(node)
    if (node.region === Region.Window) this.windowWeight -= node.weight
    else if (node.region === Region.Protected) this.protectedWeight -= node.weight
  }

  private transfer(node: N, to: Region): void {
    this.unlink(node)
    node.region = to
    this.segment(to).append(node)
    if (to === Region.Window) this.windowWeight += node.weight
    else if (to === Region.Protected) this.protectedWeight += node.weight
  }
}
