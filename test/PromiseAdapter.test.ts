import { afterEach, describe, expect, it } from "vitest"
import { makePantheonPersistenceAdapter, type PantheonPersistenceAdapter } from "../src/index.js"
import { entry } from "./support/doubles.js"

const adapters: Array<PantheonPersistenceAdapter> = []
afterEach(async () => {
  await Promise.all(adapters.splice(0).map((a) => a.dispose()))
})

const manager = (name: string, recent: Array<unknown> = [], relevant: Array<unknown> = []) => ({
  name,
  getMostRecent: async (_limit?: number, _where?: unknown) => recent,
  getMostRelevant: async (_q: ReadonlyArray<string>, _limit: number, _where?: unknown) => relevant
})

const adapter = (getStoreManagers: () => Promise<ReadonlyArray<unknown>>, config?: Parameters<typeof makePantheonPersistenceAdapter>[1], extra = {}) => {
  const a = makePantheonPersistenceAdapter({ getStoreManagers, ...extra }, config)
  adapters.push(a)
  return a
}

describe("makePantheonPersistenceAdapter", () => {
  it("compiles like the Pantheon adapter", async () => {
    const a = adapter(async () => [
      manager("chat", [entry("second", "2024-01-01T00:00:02Z", { displayName: "Bob", role: "user" }), entry("first", "2024-01-01T00:00:01Z", { displayName: "Ann" })])
    ])
    expect(await a.compile({ sources: [{ id: "chat" }] })).toEqual([
      { role: "system", content: "Ann said (2024-01-01T00:00:01.000Z): first" },
      { role: "user", content: "Bob said (2024-01-01T00:00:02.000Z): second" }
    ])
  })

  it("calls getStoreManagers once for many compiles over any mix of sources, and once for concurrent ones", async () => {
    let calls = 0
    const managers = Array.from({ length: 16 }, (_, i) => manager(`s${i}`, [entry(`t${i}`, "2024-01-01T00:00:01Z")]))
    const a = adapter(async () => (calls++, managers))
    await Promise.all(Array.from({ length: 100 }, (_, i) => a.compile({ sources: [{ id: `s${i % 16}` }] })))
    const cold = await a.cacheStats()
    expect(cold.misses).toBe(100) // every cold compile waited for a load...
    expect(cold.loads).toBe(16) // ...but each source loaded once
    for (let i = 0; i < 300; i++) await a.compile({ sources: [{ id: `s${i % 16}` }, { id: `s${(i * 3) % 16}` }], texts: ["q"] })
    expect(calls).toBe(1)
    const stats = await a.cacheStats()
    expect(stats.loads).toBe(16)
    expect(stats.misses).toBe(100) // the warm compiles were all hits
    expect(stats.hits).toBeGreaterThan(300)
    expect(Object.keys(stats).sort()).toEqual(
      ["evictionPolicy", "evictions", "expirations", "hitRate", "hits", "invalidations", "loadFailures", "loads", "misses", "refreshes", "size", "staleServed", "weight"].sort()
    )
  })

  it("uses the caller's resolvers", async () => {
    const a = adapter(async () => [manager("chat", [entry("hi", "2024-01-01T00:00:01Z", { who: "Zed" })])], undefined, {
      resolveName: (m: Record<string, unknown>) => m.who,
      resolveRole: () => "assistant",
      formatTime: () => "noon"
    })
    expect(await a.compile({ sources: [{ id: "chat" }] })).toEqual([{ role: "assistant", content: "Zed said (noon): hi" }])
  })

  it("rejects with an Error saying what was wrong when getStoreManagers fails or returns junk", async () => {
    const failing = adapter(async () => {
      throw new Error("vector db unreachable")
    })
    await expect(failing.compile({ sources: [{ id: "chat" }] })).rejects.toThrow(/getStoreManagers\(\) failed: vector db unreachable/)
    const junk = adapter(async () => "managers" as unknown as Array<unknown>)
    await expect(junk.compile({ sources: [{ id: "chat" }] })).rejects.toThrow(/resolved to "managers", expected an array/)
  })

  it("rejects a malformed request with InvalidCompileRequest", async () => {
    const a = adapter(async () => [])
    await expect(a.compile({ sources: [{ id: 1 as unknown as string }] })).rejects.toMatchObject({ _tag: "InvalidCompileRequest", field: "sources[0].id" })
  })

  it("throws at construction for an invalid cache config, naming the field", () => {
    expect(() => makePantheonPersistenceAdapter({ getStoreManagers: async () => [] }, { ttl: -1, maxSize: 10 })).toThrow(/ttl must not be negative \(got -1\)/)
    expect(() => makePantheonPersistenceAdapter({ getStoreManagers: async () => [] }, { ttl: 1000, maxSize: 0 })).toThrow(/maxSize/)
    expect(() => makePantheonPersistenceAdapter({ getStoreManagers: "nope" } as never)).toThrow(/deps.getStoreManagers/)
  })

  it("accepts durations as milliseconds or Effect duration strings", async () => {
    const a = adapter(async () => [], { ttl: "5 minutes", maxSize: 3, failureTtl: 200, staleIfError: "1 minute" })
    expect(await a.compile({ sources: [{ id: "x" }] })).toEqual([])
  })

  it("aborting one compile rejects it without harming a concurrent one", async () => {
    let release: () => void = () => {}
    const gate = new Promise<void>((r) => (release = r))
    let calls = 0
    const a = adapter(async () => {
      calls++
      await gate
      return [manager("chat", [entry("x", "2024-01-01T00:00:01Z")])]
    })
    const controller = new AbortController()
    const aborted = a.compile({ sources: [{ id: "chat" }] }, { signal: controller.signal })
    const other = a.compile({ sources: [{ id: "chat" }] })
    await new Promise((r) => setImmediate(r))
    controller.abort(new Error("user cancelled"))
    await expect(aborted).rejects.toThrow("user cancelled")
    release()
    expect(await other).toHaveLength(1)
    expect(calls).toBe(1)
  })

  it("invalidate(id) and invalidate() make the next compile fetch again", async () => {
    let calls = 0
    const a = adapter(async () => (calls++, [manager("chat", [entry("x", "2024-01-01T00:00:01Z")])]))
    await a.compile({ sources: [{ id: "chat" }] })
    await a.invalidate("chat")
    await a.compile({ sources: [{ id: "chat" }] })
    await a.invalidate()
    await a.compile({ sources: [{ id: "chat" }] })
    expect(calls).toBe(3)
    expect((await a.cacheStats()).invalidations).toBe(2)
  })

  it("rejects calls after dispose", async () => {
    const a = adapter(async () => [])
    await a.dispose()
    await expect(a.compile({ sources: [] })).rejects.toThrow(/disposed/)
  })
})
