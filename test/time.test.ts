import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { isoTime } from "../src/domain/time.js"

describe("isoTime", () => {
  it("writes what Date.prototype.toISOString writes, for any time a Date can hold", () => {
    const times = fc.oneof(
      fc.integer({ min: 0, max: 253_402_300_799_999 }),
      fc.integer({ min: -8.64e15, max: 8.64e15 }),
      fc.double({ min: -8.64e15, max: 8.64e15, noNaN: true })
    )
    fc.assert(fc.property(times, (ms) => {
        expect(isoTime(ms)).toBe(new Date(ms).toISOString())
      }), { numRuns: 20_000 })
  })

  it("is exact at the edges of days, months, leap years and its own range", () => {
    const edges = [0, 1, 999, 86_399_999, 86_400_000, Date.UTC(2000, 1, 29), Date.UTC(2100, 1, 28, 23, 59, 59, 999), Date.UTC(2100, 2, 1), Date.UTC(1972, 11, 31, 23, 59, 59, 999), 253_402_300_799_999, 253_402_300_800_000, -1, 0.5, 1.7e12 + 0.999]
    for (const ms of edges) expect(isoTime(ms)).toBe(new Date(ms).toISOString())
  })
})
