/**
 * Which eviction serves the cache, plain LRU or W-TinyLFU, decided by a duel between the cache and
 * a shadow of the other policy, as set dueling does in processor caches [1].
 *
 * Why: W-TinyLFU with a climbing window wins by up to 78 points where frequency predicts reuse (a
 * stable popular set, loops, mixes), but where only recency does (a working set that moves, an LRU
 * stack) any main region at all costs a little: a fixed split with a single main entry was 0.13-0.16
 * point below LRU on such traces (bench w3), and the climber can only approach that split. So the
 * cache serves as a plain LRU until W-TinyLFU has shown it would do better, and back.
 *
 * How
 * - Two shadows stand for the policies, with hashes only, no values: an LRU and a W-TinyLFU (which reads
 *   the cache's own frequency sketch). The cache itself plays the policy in charge; the duel scores
 *   it against the shadow of the other one, so a switch's own cost is counted too. Only that shadow
 *   replays: when the cache changes policy, the shadow of the policy it leaves starts over from the
 *   cache's own entries, regions and window (what that policy would hold had it gone on serving;
 *   its ghosts start empty), so a request costs one replay, not two (the duel's part of a hit:
 *   40 → 24 ns).
 * - Up to `SHADOW_ENTRIES` entries the shadows replay every request at full size; above, they replay
 *   the keys whose hash falls in a fixed `SHADOW_ENTRIES / capacity` share of the hash space, at that
 *   share of the size (spatial sampling, as SHARDS [2]: the sampled hit rate estimates the whole).
 * - Each period the advantage of W-TinyLFU (its hits minus LRU's) and the number of requests on
 *   which the two disagreed are added to decaying sums. A switch needs the advantage to exceed `Z`
 *   standard deviations of a fair coin over those disagreements: a sign test, so the noise of a
 *   small cache does not make the cache flap. Leaving LRU needs stronger evidence than returning to
 *   it, because LRU is the baseline a user compares with.
 * - A cache whose shadows replay everything starts as an LRU; one whose shadows sample starts as
 *   W-TinyLFU: its evidence comes `1 / rate` times slower, and on a loop the entries an LRU lets
 *   go meanwhile are those the next pass asks for (LIRS multi2 at 3,000 entries: 73.4 % hits from
 *   an LRU start, 78.0 % from a W-TinyLFU start, published 78.0 %; the price, on w3's recency,
 *   shifting and phases traces at 1,600 and 3,200 entries: 0.02-0.12 point below LRU, which the
 *   LRU start holds to 0-0.05).
 * - While duelled, W-TinyLFU's window climbs to at most `WINDOW_LIMIT` of the cache: LRU is the
 *   other contender, a window near the whole cache would only play it worse.
 * - Nothing is decided at a period's end in the first `WARMUP_PERIODS` capacities of requests (both
 *   shadows fill). Every `EARLY_CHECK` requests, though, a full cache still an LRU leaves it at once
 *   on overwhelming evidence or when it scans (`decideEarly`): a short loop-heavy trace ends before
 *   the warm-up does. On switching to W-TinyLFU the cache's entries are arranged as the shadow holds them.
 *
 * Weights: the shadows weigh each entry as the cache does (a miss, whose value is not loaded yet,
 * at the cache's typical weight), so a cache with a weigher and a bound on its count (the store
 * managers, in slots) duels too. A cache bounded by weight alone (embeddings, query results, in
 * bytes) does not: without a bound on the count the shadows' size is unknown; it keeps W-TinyLFU.
 *
 * [1] Qureshi, Jaleel, Patt, Steely & Emer, "Adaptive Insertion Policies for High Performance
 *     Caching", ISCA 2007 (set dueling).
 * [2] Waldspurger, Park, Garthwaite & Ahmad, "Efficient MRC Construction with SHARDS", FAST 2015.
 */
import type { FrequencySketch } from "./FrequencySketch.js"
import { Region, type PolicyNode, WindowTinyLfu } from "./WindowTinyLfu.js"

/** Shadows replay every request up to this size, a hash-sampled share above it (both shadows: about 320 bytes an entry, measured). */
const SHADOW_ENTRIES = 1024
/** A period is this many shadow capacities of sampled requests... */
const PERIOD_FACTOR = 2
/** ...and at least this many, so that a small cache does not decide on a handful of requests. */
const MIN_PERIOD = 100
/** Each period's sums keep this share of the previous ones (a memory of about five periods). */
const DECAY = 0.8
/** No decision before this many shadow capacities of requests: until then both shadows are filling. */
const WARMUP_PERIODS = 10
/** Standard deviations of advantage needed to leave LRU for W-TinyLFU (about 1 in 700 by chance). */
const Z_TO_TINY_LFU = 3
/** ... and to return to LRU (about 1 in 15): LRU is the safe side. */
const Z_TO_LRU = 1.5

/** Requests between two early checks (a power of two). */
const EARLY_CHECK = 8
/** Standard deviations of advantage for an early switch (about 1 in 3.5 million by chance). */
const Z_EARLY = 5
/** Disagreements an early switch needs at least. */
const EARLY_DISAGREEMENTS = 50
/** While the cache, as an LRU, hits at most this share of the requests (it is full, W-TinyLFU not behind), it scans: W-TinyLFU keeps what LRU lets go at no cost. */
const SCAN_RATE = 0.01
/** Requests of a period before a scan is recognised. */
const SCAN_MIN = 64

/**
 * The most of the cache W-TinyLFU's window may climb to while duelled (the cache's and the
 * shadow's). Measured on the public traces and w3's mix rows (LIRS sprite at 200 entries / mix, 25
 * to 400 entries, over LRU): uncapped 43.7 % / 0.3-2.4 points; capped at 20 % 48.9 % / 0-6.2;
 * at 5 % 49.1 % / 0 at 25-100 entries (the duel never left LRU there); published W-TinyLFU 49.7 %.
 */
const WINDOW_LIMIT = 0.2

export type EvictionPolicy = "lru" | "w-tinylfu"

/** What the duel needs of the cache's policy (`WindowTinyLfu`). */
export interface DuelledPolicy {
  readonly maximum: number
  readonly maximumEntries: number
  readonly weighted: boolean
  readonly sketch: FrequencySketch
  readonly lru: boolean
  readonly windowMaximum: number
  /** The entries held, window first, then probation, then protected (least recently used first). */
  nodes(): Iterable<PolicyNode<any>>
  useLru(): void
  useTinyLfu(windowMaximum: number, regionOf?: (hash: number) => Region): void
  limitWindow(share: number): void
}

/** A shadow's entry: a key's hash (reused for another key once evicted), its weight and its links. */
interface HashNode extends PolicyNode<HashNode> {
  hash: number
}

/**
 * A policy of hashes over the cache's own sketch, as LRU or as W-TinyLFU (the cache's policy class
 * either way, so the LRU shadow is exactly what the cache is in LRU mode): whether each request
 * would have hit.
 */
class Shadow {
  readonly policy: WindowTinyLfu<HashNode>
  private readonly nodes = new Map<number, HashNode>()
  private readonly spare: Array<HashNode> = []

  constructor(as: EvictionPolicy, of: DuelledPolicy, maximum: number, maximumEntries: number, random: () => number) {
    this.policy = new WindowTinyLfu<HashNode>({
      maximum,
      maximumEntries,
      weighted: of.weighted,
      sketch: of.sketch,
      random,
      onEvict: (node) => {
        this.nodes.delete(node.hash)
        this.spare.push(node)
      }
    })
    this.policy.limitWindow(WINDOW_LIMIT)
    if (as === "lru") this.policy.useLru()
  }

  /** The region the shadow holds the key's hash in (`None`: not held). */
  readonly regionOf = (hash: number): Region => this.nodes.get(hash)?.region ?? Region.None

  /**
   * Starts over as the cache's policy is now, holding the cache's entries this shadow samples, in
   * their regions and order (`windowMaximum`: the cache's window at this shadow's scale).
   */
  mirror(held: Iterable<PolicyNode<any>>, sampled: (hash: number) => boolean, windowMaximum: number): void {
    this.policy.clear()
    for (const node of this.nodes.values()) this.spare.push(node)
    this.nodes.clear()
    const arranged: Array<readonly [HashNode, Region]> = []
    for (const entry of held) {
      if (!sampled(entry.hash)) continue
      const node = this.spare.pop() ?? { hash: entry.hash, weight: 0, region: Region.None, prev: null, next: null }
      node.hash = entry.hash
      node.weight = entry.weight
      this.nodes.set(entry.hash, node)
      arranged.push([node, entry.region])
    }
    this.policy.restore(arranged, windowMaximum)
  }

  /** Replays one request (the policy's own sequence: `access`, then `put`, a miss's value being in at once); whether it hit. */
  access(hash: number, weight: number): boolean {
    const held = this.nodes.get(hash)
    this.policy.access(hash, held)
    if (held !== undefined) {
      if (held.weight !== weight) this.policy.put(held, weight)
      return true
    }
    const node = this.spare.pop() ?? { hash, weight: 0, region: Region.None, prev: null, next: null }
    node.hash = hash
    this.nodes.set(hash, node)
    this.policy.put(node, weight)
    return false
  }
}

export class PolicyDuel {
  private readonly lru: Shadow
  private readonly tinyLfu: Shadow
  /** Hashes below this, read as unsigned, are replayed by the shadows (2^32: all). */
  private readonly threshold: number
  private readonly rate: number
  private readonly period: number
  private readonly warmup: number
  private readonly capacity: number
  private requests = 0
  private lruHits = 0
  private seen = 0
  private advantage = 0
  private disagreements = 0
  private score = 0
  private spread = 0
  private switched = 0

  /** Duels for `policy` (with a finite bound on the number of entries), which starts as an LRU, or as W-TinyLFU if the shadows sample. */
  constructor(private readonly policy: DuelledPolicy, random: () => number = Math.random) {
    const entries = Math.min(policy.maximumEntries, policy.weighted ? Infinity : policy.maximum)
    this.rate = Math.min(1, SHADOW_ENTRIES / entries)
    const capacity = Math.max(1, Math.round(entries * this.rate))
    const maximum = policy.weighted ? policy.maximum * this.rate : capacity
    this.threshold = this.rate * 2 ** 32
    this.period = Math.max(MIN_PERIOD, PERIOD_FACTOR * capacity)
    this.warmup = WARMUP_PERIODS * capacity
    this.capacity = capacity
    this.lru = new Shadow("lru", policy, maximum, capacity, random)
    this.tinyLfu = new Shadow("w-tinylfu", policy, maximum, capacity, random)
    policy.limitWindow(WINDOW_LIMIT)
    if (this.rate === 1) policy.useLru()
  }

  /** Whether the shadows replay requests for the key with this hash (`hashKey`'s, signed: read as unsigned here). */
  private readonly sampled = (hash: number): boolean => hash >>> 0 < this.threshold

  /** Where the W-TinyLFU shadow holds the key (an entry it does not sample keeps its place in recency order, in probation). */
  private readonly regionOf = (hash: number): Region => (this.sampled(hash) ? this.tinyLfu.regionOf(hash) : Region.Probation)

  /** How many times the cache changed policy. */
  get switches(): number {
    return this.switched
  }

  get current(): EvictionPolicy {
    return this.policy.lru ? "lru" : "w-tinylfu"
  }

  /**
   * One request for the key with this hash, after the cache recorded it: `hit` if the cache held
   * the key; `weight`, its entry's weight (for a miss, the typical weight: the value is not loaded yet).
   */
  observe(hash: number, hit: boolean, weight: number): void {
    if (!this.sampled(hash)) return
    // The cache plays the policy in charge: only the other one's shadow replays.
    const inLru = this.policy.lru
    const shadowHit = (inLru ? this.tinyLfu : this.lru).access(hash, weight)
    const asLru = inLru ? hit : shadowHit
    const asTinyLfu = inLru ? shadowHit : hit
    if (asLru) this.lruHits++
    if (asLru !== asTinyLfu) {
      this.disagreements++
      this.advantage += asTinyLfu ? 1 : -1
    }
    if (++this.requests >= this.period) this.decide()
    else if ((this.requests & (EARLY_CHECK - 1)) === 0 && this.policy.lru) this.decideEarly()
  }

  /**
   * The sequential part of the test, every `EARLY_CHECK` requests while the cache is an LRU, once a capacity of requests has passed:
   * leaves LRU before the period ends (and before the warm-up is over) when the evidence is
   * overwhelming (`Z_EARLY` deviations over at least `EARLY_DISAGREEMENTS` disagreements), or when
   * the cache scans (hits at most `SCAN_RATE`, W-TinyLFU not behind): then W-TinyLFU's refusal to
   * admit keeps what a loop will ask for again, at no cost now. A short loop-heavy trace is over
   * before ten capacities have passed (LIRS gli: 6,015 requests; at 1,000 entries LRU hits 11 %,
   * W-TinyLFU 49 %). On switching, the cache's entries are arranged as the shadow holds them.
   */
  private decideEarly(): void {
    if (!this.policy.lru || this.seen + this.requests < this.capacity) return
    const score = DECAY * this.score + this.advantage
    const spread = DECAY * this.spread + this.disagreements
    const scanning = this.requests >= SCAN_MIN && this.lruHits <= SCAN_RATE * this.requests && score >= 0
    if (scanning || (spread >= EARLY_DISAGREEMENTS && score > Z_EARLY * Math.sqrt(spread))) this.toTinyLfu()
  }

  /**
   * The cache serves as W-TinyLFU, with the shadow's window and its entries where the shadow holds
   * them; the LRU shadow takes over from the cache the LRU it was (the LRU the duel now compares with).
   */
  private toTinyLfu(): void {
    this.lru.mirror(this.policy.nodes(), this.sampled, Infinity)
    this.policy.useTinyLfu(this.tinyLfu.policy.windowMaximum / this.rate, this.regionOf)
    this.switched++
  }

  /** The cache serves as an LRU; the W-TinyLFU shadow takes over from the cache the W-TinyLFU it was, window and regions. */
  private toLru(): void {
    this.tinyLfu.mirror(this.policy.nodes(), this.sampled, this.policy.windowMaximum * this.rate)
    this.policy.useLru()
    this.switched++
  }

  private decide(): void {
    this.seen += this.requests
    this.score = DECAY * this.score + this.advantage
    this.spread = DECAY * this.spread + this.disagreements
    this.requests = this.advantage = this.disagreements = this.lruHits = 0
    if (this.seen < this.warmup) return
    const noise = Math.sqrt(this.spread)
    if (this.policy.lru && this.score > Z_TO_TINY_LFU * noise) {
      this.toTinyLfu()
    } else if (!this.policy.lru && this.score < -Z_TO_LRU * noise) {
      this.toLru()
    }
  }
}
