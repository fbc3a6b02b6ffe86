/**
 * The eviction policy on its own, replayed over seeded traces: the climbing window of W-TinyLFU
 * (what a cache bounded by bytes alone uses), and the duel that makes a cache a plain LRU until
 * W-TinyLFU has shown it would hit more. The reference LRU is a few lines over a `Map`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { prng, zipf } from "../support/random.js"
import * as LoadingCache from "../../src/cache/LoadingCache.js"
import { hashKey } from "../../src/cache/FrequencySketch.js"
import { Eviction } from "../../src/cache/Eviction.js"
import { type PolicyNode, Region, WindowTinyLfu } from "../../src/cache/WindowTinyLfu.js"

interface Entry extends PolicyNode<Entry> {
  readonly key: string
}

/** One request for `key` in the policy's own sequence: `access`, then, on a miss, `put` of a new entry of weight 1. */
const request = (policy: WindowTinyLfu<Entry>, held: Map<string, Entry>, key: string) => {
  const hash = hashKey(key)
  const entry = held.get(key)
  policy.access(hash, entry)
  if (entry === undefined) {
    const fresh: Entry = { key, hash, weight: 1, region: Region.None, prev: null, next: null }
    held.set(key, fresh)
    policy.put(fresh, 1)
  }
}

/** Replays keys through the cache's eviction (its policy and its duel) in the cache's own sequence; counts hits per slice. */
const replay = (keys: ReadonlyArray<string>, capacity: number, options: { readonly duel: boolean; readonly slice?: number }) => {
  const held = new Map<string, Entry>()
  const eviction = new Eviction<Entry>({
    maximum: capacity,
    maximumEntries: options.duel ? capacity : Infinity,
    onEvict: (e) => held.delete(e.key),
    random: prng(1),
    duelRandom: prng(2)
  })
  const misses: Array<number> = []
  const policies: Array<string> = []
  let hits = 0
  keys.forEach((key, i) => {
    const hash = hashKey(key)
    const entry = held.get(key)
    eviction.request(hash, entry)
    if (entry !== undefined) hits++
    else {
      const slice = Math.floor(i / (options.slice ?? keys.length))
      misses[slice] = (misses[slice] ?? 0) + 1
      const fresh: Entry = { key, hash, weight: 1, region: Region.None, prev: null, next: null }
      held.set(key, fresh)
      eviction.put(fresh, 1)
    }
    if ((i + 1) % (options.slice ?? keys.length) === 0) policies.push(eviction.current)
    expect(held.size).toBeLessThanOrEqual(capacity)
  })
  return { hits, misses, policies, switches: eviction.duel?.switches ?? 0 }
}

/** The hits of an LRU of `capacity` entries and, with `weightOf`, of at most `maxWeight` total weight. */
const lruHits = (keys: ReadonlyArray<string>, capacity: number, weightOf = (_key: string) => 1, maxWeight = capacity) => {
  const held = new Map<string, number>()
  let hits = 0
  let weight = 0
  for (const key of keys) {
    const known = held.get(key)
    if (known !== undefined) {
      hits++
      held.delete(key)
      held.set(key, known)
      continue
    }
    held.set(key, weightOf(key))
    weight += weightOf(key)
    for (const [oldest, w] of held) {
      if (held.size <= capacity && weight <= maxWeight) break
      held.delete(oldest)
      weight -= w
    }
  }
  return hits
}

/** Working sets of 40 keys read round-robin 25 times each, never again. */
const phases = (count: number) => Array.from({ length: count * 1000 }, (_, i) => `p${Math.floor(i / 1000)}-${i % 40}`)
/** Uniform over a 200-key set that moves by 50 keys every 2,000 requests (only recency predicts reuse). */
const shifting = (length: number, random: () => number) =>
  Array.from({ length }, (_, i) => `s${50 * Math.floor(i / 2000) + Math.floor(random() * 200)}`)
const zipfTrace = (length: number, random: () => number) => {
  const pick = zipf(1000, 1.0, random)
  return Array.from({ length }, () => `z${pick()}`)
}

describe("W-TinyLFU's climbing window (caches bounded by bytes alone use it without a duel)", () => {
  it("grows the window until a moving working set costs what an LRU pays", () => {
    // A 1 % window refuses the newcomers while the old phase looks popular; the window's ghost
    // hits grow it until each phase loads its 40 keys once.
    const { misses } = replay(phases(24), 50, { duel: false, slice: 1000 })
    expect(misses[1]).toBeGreaterThan(40)
    expect(misses.slice(-4)).toEqual([40, 40, 40, 40])
  })
})

describe("switching the policy", () => {
  it("keeps every entry exactly once, in the region it says, under the bound, through random switches", () => {
    const random = prng(8)
    const held = new Map<string, Entry>()
    const policy = new WindowTinyLfu<Entry>({ maximum: 60, maximumEntries: 60, onEvict: (e) => held.delete(e.key), random })
    let backFromLru = false
    let protectedAfterLru = false
    const check = () => {
      const nodes = [...policy.nodes()]
      expect(nodes.length).toBe(held.size)
      expect(policy.count).toBe(held.size)
      expect(policy.weightedSize).toBe(held.size)
      expect(new Set(nodes).size).toBe(nodes.length)
      for (const node of nodes) expect(held.get(node.key)).toBe(node)
      expect(held.size).toBeLessThanOrEqual(60)
      expect(nodes.filter((node) => node.region === Region.Window).length).toBeLessThanOrEqual(policy.windowMaximum)
      const protectedCount = nodes.filter((node) => node.region === Region.Protected).length
      expect(protectedCount).toBeLessThanOrEqual(policy.protectedMaximum)
      // After a spell as an LRU, popular entries are promoted to protected again.
      if (backFromLru && protectedCount > 0) protectedAfterLru = true
      if (policy.lru) expect(nodes.every((node) => node.region === Region.Window)).toBe(true)
      else expect(policy.windowMaximum).toBeLessThan(60)
    }
    for (let i = 0; i < 20_000; i++) {
      const roll = random()
      if (roll < 0.002) policy.useLru()
      else if (roll < 0.004) {
        backFromLru ||= policy.lru
        policy.useTinyLfu(1 + random() * 80)
      }
      else if (roll < 0.02) {
        const victim = held.get(`k${Math.floor(random() * 200)}`)
        if (victim !== undefined) {
          policy.remove(victim)
          held.delete(victim.key)
        }
      } else {
        request(policy, held, `k${Math.floor(random() ** 2 * 200)}`)
      }
      if (i % 97 === 0) check()
    }
    check()
    expect(protectedAfterLru).toBe(true)
  })
})

describe("a policy started over from another's entries (a duel's shadow taking the cache's place)", () => {
  /** A W-TinyLFU of 60 entries after a Zipf trace: entries in all three regions. */
  const filled = () => {
    const held = new Map<string, Entry>()
    const policy = new WindowTinyLfu<Entry>({ maximum: 60, onEvict: (e) => held.delete(e.key), random: prng(3) })
    for (const key of zipfTrace(5_000, prng(4))) request(policy, held, key)
    return policy
  }
  const copies = (policy: WindowTinyLfu<Entry>) =>
    [...policy.nodes()].map((node) => [{ ...node, region: Region.None, prev: null, next: null }, node.region] as const)
  const layout = (policy: WindowTinyLfu<Entry>) => [...policy.nodes()].map((node) => `${node.key}@${node.region}`)

  it("holds them in their regions and order, with the same window", () => {
    const source = filled()
    expect(new Set([...source.nodes()].map((node) => node.region))).toEqual(new Set([Region.Window, Region.Probation, Region.Protected]))
    const copy = new WindowTinyLfu<Entry>({ maximum: 60, onEvict: () => expect.fail("nothing to evict") })
    copy.restore(copies(source), source.windowMaximum)
    expect(layout(copy)).toEqual(layout(source))
    expect(copy.windowMaximum).toBe(source.windowMaximum)
    expect(copy.count).toBe(60)
  })

  it("as an LRU, holds them all in its window in the order given", () => {
    const source = filled()
    const lru = new WindowTinyLfu<Entry>({ maximum: 60, onEvict: () => expect.fail("nothing to evict") })
    lru.useLru()
    lru.restore(copies(source), Infinity)
    expect([...lru.nodes()].map((node) => node.key)).toEqual([...source.nodes()].map((node) => node.key))
    expect([...lru.nodes()].every((node) => node.region === Region.Window)).toBe(true)
  })

  it("evicts down to its own bounds when given more than it holds (a shadow that samples)", () => {
    const source = filled()
    const evicted: Array<string> = []
    const lru = new WindowTinyLfu<Entry>({ maximum: 25, onEvict: (e) => evicted.push(e.key) })
    lru.useLru()
    lru.restore(copies(source), Infinity)
    const order = [...source.nodes()].map((node) => node.key)
    // The least recent go first: what stays is the last 25 of the order given.
    expect(evicted).toEqual(order.slice(0, 35))
    expect([...lru.nodes()].map((node) => node.key)).toEqual(order.slice(35))
    const tinyLfu = new WindowTinyLfu<Entry>({ maximum: 25, onEvict: () => {} })
    tinyLfu.restore(copies(source), 1)
    expect(tinyLfu.count).toBe(25)
    expect(tinyLfu.weightedSize).toBe(25)
  })
})

describe("the duel between LRU and W-TinyLFU", () => {
  it("stays an LRU, hit for hit, where only recency predicts reuse", () => {
    const keys = shifting(60_000, prng(3))
    const ours = replay(keys, 100, { duel: true })
    expect(ours.switches).toBe(0)
    expect(ours.hits).toBe(lruHits(keys, 100))
    const moving = phases(24)
    expect(replay(moving, 50, { duel: true }).hits).toBe(lruHits(moving, 50))
  })

  it("switches to W-TinyLFU where frequency predicts reuse, and hits more than LRU", () => {
    const keys = zipfTrace(60_000, prng(4))
    const ours = replay(keys, 100, { duel: true, slice: 10_000 })
    expect(ours.policies.at(-1)).toBe("w-tinylfu")
    // Zipf(1.0) over 1,000 keys at 100 entries: LRU hits about 58 %, W-TinyLFU about 66 %.
    expect(ours.hits / keys.length).toBeGreaterThan(lruHits(keys, 100) / keys.length + 0.05)
  })

  it("leaves LRU as soon as a full cache scans: a loop larger than the cache is not lost to the warm-up", () => {
    // 600 keys in a loop at 500 entries: an LRU never hits; ten capacities of warm-up would be 5,000 requests.
    const keys = Array.from({ length: 4_000 }, (_, i) => `l${i % 600}`)
    const ours = replay(keys, 500, { duel: true, slice: 1_000 })
    expect(lruHits(keys, 500)).toBe(0)
    expect(ours.policies[0]).toBe("w-tinylfu")
    expect(ours.hits / keys.length).toBeGreaterThan(0.5)
  })

  it("returns to LRU when the traffic stops rewarding frequency", () => {
    const random = prng(5)
    const keys = [...zipfTrace(30_000, random), ...shifting(100_000, random)]
    const ours = replay(keys, 100, { duel: true, slice: 10_000 })
    expect(ours.policies[2]).toBe("w-tinylfu")
    expect(ours.policies.at(-1)).toBe("lru")
  })

  it("samples the shadows by hash above 1,024 entries and still finds the better policy", () => {
    const random = prng(6)
    const pick = zipf(20_000, 1.0, random)
    const keys = Array.from({ length: 200_000 }, () => `z${pick()}`)
    const ours = replay(keys, 2_000, { duel: true, slice: 50_000 })
    expect(ours.policies.at(-1)).toBe("w-tinylfu")
    expect(ours.hits).toBeGreaterThan(lruHits(keys, 2_000))
  })

  it("starts as an LRU while the shadows replay everything, as W-TinyLFU once they sample (above 1,024 entries)", () => {
    const make = (capacity: number) => new Eviction<Entry>({ maximum: capacity, maximumEntries: capacity, onEvict: () => {}, random: prng(1), duelRandom: prng(2) })
    expect(make(1_024).current).toBe("lru")
    expect(make(1_025).current).toBe("w-tinylfu")
  })

  it("keeps W-TinyLFU's window within a fifth of the cache (LRU is the other contender), where alone it climbs further", () => {
    // Working sets of 1,600 keys, each read round-robin 10 times: the window's ghosts keep asking for more room.
    const keys = Array.from({ length: 160_000 }, (_, i) => `p${Math.floor(i / 16_000)}-${i % 1_600}`)
    const widest = (duel: boolean) => {
      const held = new Map<string, Entry>()
      const eviction = new Eviction<Entry>({ maximum: 2_000, maximumEntries: duel ? 2_000 : Infinity, onEvict: (e) => held.delete(e.key), random: prng(1), duelRandom: prng(2) })
      let widest = 0
      for (const key of keys) {
        const hash = hashKey(key)
        const entry = held.get(key)
        eviction.request(hash, entry)
        if (entry === undefined) {
          const fresh: Entry = { key, hash, weight: 1, region: Region.None, prev: null, next: null }
          held.set(key, fresh)
          eviction.put(fresh, 1)
        }
        if (!eviction.policy.lru) widest = Math.max(widest, eviction.policy.windowMaximum)
      }
      return widest
    }
    expect(widest(true)).toBeLessThanOrEqual(400)
    expect(widest(false)).toBeGreaterThan(400)
  })
})

describe("the policy a cache reports", () => {
  it.scoped("an unweighted cache starts as an LRU and reports the switch in its stats", () =>
    Effect.gen(function* () {
      const cache = yield* LoadingCache.makeWith({ capacity: 50, lookup: (key: string) => Effect.succeed(key), timeToLive: () => "1 hour" })
      expect((yield* cache.stats).evictionPolicy).toBe("lru")
      for (const key of zipfTrace(20_000, prng(7))) yield* cache.get(key)
      expect((yield* cache.stats).evictionPolicy).toBe("w-tinylfu")
    }))

  it.scoped("a weighted cache with a count bound duels too: a weighted LRU hit for hit on a moving set, W-TinyLFU on Zipf", () =>
    Effect.gen(function* () {
      const weightOf = (key: string) => 1 + ((hashKey(key) >>> 0) % 3)
      const make = LoadingCache.makeWith({
        capacity: 100,
        lookup: (key: string) => Effect.succeed(key),
        timeToLive: () => "1 hour",
        weigher: (key: string) => weightOf(key),
        maxWeight: 150
      })
      const moving = shifting(30_000, prng(9))
      const recency = yield* make
      for (const key of moving) yield* recency.get(key)
      expect((yield* recency.stats).evictionPolicy).toBe("lru")
      expect((yield* recency.stats).hits).toBe(lruHits(moving, 100, weightOf, 150))
      const frequency = yield* make
      for (const key of zipfTrace(30_000, prng(10))) yield* frequency.get(key)
      expect((yield* frequency.stats).evictionPolicy).toBe("w-tinylfu")
    }))

  it.scoped("a cache bounded by weight alone always uses W-TinyLFU", () =>
    Effect.gen(function* () {
      const cache = yield* LoadingCache.makeWith({
        capacity: Infinity,
        lookup: (key: string) => Effect.succeed(key),
        timeToLive: () => "1 hour",
        weigher: (_key: string, value: string) => value.length,
        maxWeight: 1_000
      })
      yield* cache.get("a")
      expect((yield* cache.stats).evictionPolicy).toBe("w-tinylfu")
    }))
})
