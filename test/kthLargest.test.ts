import { describe, expect, it } from "vitest"
import { kthLargest } from "../src/stores/sql/warm/kthLargest.js"
import { prng } from "./support/random.js"

describe("kthLargest", () => {
  it("is the k-th value of the descending sort, for every k, with ties, sorted and reversed input", () => {
    const random = prng(7)
    const inputs = [
      Float64Array.from({ length: 200 }, () => Math.floor(random() * 20)), // many ties
      Float64Array.from({ length: 150 }, () => random()),
      Float64Array.from({ length: 100 }, (_, i) => i), // sorted
      Float64Array.from({ length: 100 }, (_, i) => 100 - i), // reversed
      Float64Array.of(5)
    ]
    for (const values of inputs) {
      const descending = [...values].sort((a, b) => b - a)
      for (let k = 1; k <= values.length; k++) expect(kthLargest(values, values.length, k)).toBe(descending[k - 1])
    }
  })

  it("reads only the first n values and leaves its input as it was", () => {
    const values = Float64Array.of(3, 9, 1, 7, 100, 200)
    const before = [...values]
    expect(kthLargest(values, 4, 1)).toBe(9)
    expect(kthLargest(values, 4, 4)).toBe(1)
    expect([...values]).toEqual(before)
  })
})
