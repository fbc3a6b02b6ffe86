import { describe, expect, it } from "vitest"
import { ResultCache } from "../src/stores/sql/ResultCache.js"
import { bestPerText } from "../src/stores/sql/SqlStore.js"

describe("ResultCache", () => {
  it("serves a result until the source's data changes", () => {
    const cache = new ResultCache<string>(10, 1000)
    cache.set("a", "q", "rows", 0)
    expect(cache.get("a", "q", 1)).toBe("rows")
    cache.bump("b")
    expect(cache.get("a", "q", 2)).toBe("rows")
    cache.bump("a")
    expect(cache.get("a", "q", 3)).toBeUndefined()
  })

  it("does not serve a result stored by a query that started before a write", () => {
    const cache = new ResultCache<string>(10, 1000)
    const startedAt = cache.version("a")
    cache.bump("a") // a write lands while the query runs
    cache.set("a", "q", "stale", 0, startedAt)
    expect(cache.get("a", "q", 1)).toBeUndefined()
  })

  it("expires results after ttl and keeps at most capacity, least recently used out first", () => {
    const cache = new ResultCache<number>(2, 100)
    cache.set("s", "1", 1, 0)
    cache.set("s", "2", 2, 0)
    expect(cache.get("s", "1", 10)).toBe(1)
    cache.set("s", "3", 3, 10)
    expect(cache.get("s", "2", 20)).toBeUndefined()
    expect(cache.get("s", "1", 20)).toBe(1)
    expect(cache.get("s", "1", 100)).toBeUndefined()
    expect(cache.size).toBeLessThanOrEqual(2)
  })

  it("stores nothing with capacity 0", () => {
    const cache = new ResultCache<number>(0, 100)
    cache.set("s", "1", 1, 0)
    expect(cache.get("s", "1", 1)).toBeUndefined()
  })
})

describe("bestPerText", () => {
  const row = (id: string, text: string, score: number) => ({ id, text, ts: 0, metadata: {}, score })
  it("keeps each text's best score, best first, ties by id, at most n", () => {
    const rows = [row("3", "x", 0.5), row("1", "y", 0.9), row("2", "x", 0.7), row("4", "z", 0.7), row("0", "w", 0.1)]
    expect(bestPerText(rows, 3).map((r) => [r.id, r.score])).toEqual([["1", 0.9], ["2", 0.7], ["4", 0.7]])
  })
})
