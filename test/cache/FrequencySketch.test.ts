/**
 * The frequency sketch and the ghost list on their own: what admission and the window's climbing read.
 */
import { describe, expect, it } from "@effect/vitest"
import { FrequencySketch, hashKey } from "../../src/cache/FrequencySketch.js"
import { GhostList } from "../../src/cache/GhostList.js"

describe("FrequencySketch", () => {
  it("counts a key's accesses, capped at 15", () => {
    const sketch = new FrequencySketch(100)
    const h = hashKey("a")
    expect(sketch.frequency(h)).toBe(0)
    for (let i = 0; i < 5; i++) sketch.increment(h)
    expect(sketch.frequency(h)).toBe(5)
    for (let i = 0; i < 50; i++) sketch.increment(h)
    expect(sketch.frequency(h)).toBe(15)
  })

  it("over-estimates only by collisions: among 100 keys sized for 100, a key seen once reads as at most a few", () => {
    const sketch = new FrequencySketch(100)
    for (let k = 0; k < 100; k++) sketch.increment(hashKey(`k${k}`))
    const estimates = Array.from({ length: 100 }, (_, k) => sketch.frequency(hashKey(`k${k}`)))
    expect(estimates.every((f) => f >= 1)).toBe(true)
    expect(estimates.filter((f) => f > 1).length).toBeLessThan(10)
  })

  it("ranks a popular key above a rare one", () => {
    const sketch = new FrequencySketch(64)
    for (let i = 0; i < 8; i++) sketch.increment(hashKey("hot"))
    sketch.increment(hashKey("cold"))
    expect(sketch.frequency(hashKey("hot"))).toBeGreaterThan(sketch.frequency(hashKey("cold")))
  })

  it("halves every count after its sample size of increments (what was popular long ago fades)", () => {
    const sketch = new FrequencySketch(16)
    const h = hashKey("old")
    for (let i = 0; i < 14; i++) sketch.increment(h)
    expect(sketch.frequency(h)).toBe(14)
    // A sketch for 16 keys halves after 10 × 16 increments.
    for (let k = 0; sketch.frequency(h) === 14 && k < 160; k++) sketch.increment(hashKey(`other${k}`))
    expect(sketch.frequency(h)).toBe(7)
  })

  it("grows with the cache, and only when it has to", () => {
    const sketch = new FrequencySketch(16)
    expect(sketch.ensureCapacity(16)).toBe(false)
    expect(sketch.ensureCapacity(1000)).toBe(true)
    expect(sketch.capacity).toBe(1000)
  })
})

describe("GhostList", () => {
  it("remembers the last `capacity` hashes pushed; a take forgets the hash", () => {
    const ghosts = new GhostList(3)
    for (const h of [1, 2, 3, 4]) ghosts.push(h)
    expect(ghosts.take(1)).toBe(false) // pushed out by 4
    expect(ghosts.take(2)).toBe(true)
    expect(ghosts.take(2)).toBe(false) // one vote per eviction
    expect(ghosts.take(4)).toBe(true)
  })

  it("a hash pushed again is remembered from its newest push", () => {
    const ghosts = new GhostList(2)
    ghosts.push(7)
    ghosts.push(8)
    ghosts.push(7) // the oldest slot (7) leaves, its newer push stays
    expect(ghosts.take(7)).toBe(true)
    expect(ghosts.take(8)).toBe(true)
  })

  it("takes hashes of the whole unsigned range as pushed (`hashKey`'s, half of them above 2^31)", () => {
    const ghosts = new GhostList(2)
    ghosts.push(0xffff_fffe)
    ghosts.push(2 ** 31)
    expect(ghosts.take(0x7fff_fffe)).toBe(false)
    expect(ghosts.take(0xffff_fffe)).toBe(true)
    ghosts.push(5) // the oldest slot (0xfffffffe, taken already) leaves; 2^31 stays
    expect(ghosts.take(2 ** 31)).toBe(true)
    expect(ghosts.take(5)).toBe(true)
  })

  it("clear and resize forget everything", () => {
    const ghosts = new GhostList(4)
    ghosts.push(1)
    ghosts.clear()
    expect(ghosts.take(1)).toBe(false)
    ghosts.push(2)
    ghosts.resize(8)
    expect(ghosts.take(2)).toBe(false)
    for (let h = 10; h < 19; h++) ghosts.push(h) // nine into eight slots: the first is pushed out
    expect(ghosts.take(10)).toBe(false)
    expect(ghosts.take(11)).toBe(true)
    expect(ghosts.take(18)).toBe(true)
  })
})
