import { Effect, Layer, ManagedRuntime } from "effect"
import { PersistenceAdapterLive, managersBackend, ContextCompiler, fromLegacyManager } from "/work/main/src/index.js"
const fakeEntries = (source: string, n: number, offset: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `${source}-${i + offset}`, text: `${source} message ${i + offset}`, timestamp: 1_700_000_000_000 + (i + offset) * 1000, metadata: { displayName: `user${i % 5}`, type: "chat" } }))
const legacyManagers = Array.from({ length: 16 }, (_, s) => { const name = `source-${s}`; const recent = fakeEntries(name, 10, 0); const relevant = fakeEntries(name, 5, 100); return { name, getMostRecent: async () => recent, getMostRelevant: async (_q: any, l: number, w?: any) => w?.type === "image" ? [] : relevant } })
const syncManagers = legacyManagers.map((m) => ({ name: m.name, getMostRecent: () => Effect.promise(() => m.getMostRecent()), getMostRelevant: (q: any, l: number, w: any) => Effect.promise(() => m.getMostRelevant(q, l, w)), insert: () => Effect.void }))
const pureManagers = legacyManagers.map((m, s) => { const recent = fakeEntries(m.name, 10, 0); const rel = fakeEntries(m.name, 5, 100); return { name: m.name, getMostRecent: () => Effect.succeed(recent), getMostRelevant: (q: any, l: number, w: any) => Effect.succeed(w?.type === "image" ? [] : rel), insert: () => Effect.void } })
const time = async (name: string, n: number, f: () => any) => { for (let i=0;i<500;i++) await f(); const t0 = performance.now(); for (let i = 0; i < n; i++) await f(); console.log(name, ((performance.now() - t0) * 1e3 / n).toFixed(1), "us") }
for (const [name, ms] of [["legacy", legacyManagers.map(fromLegacyManager)], ["promise", syncManagers], ["pure", pureManagers]] as const) {
  const rt = ManagedRuntime.make(PersistenceAdapterLive({ cache: {} }).pipe(Layer.provide(managersBackend(ms as any))))
  for (const n of [1, 3]) {
    const req = { texts: ["q"], sources: Array.from({ length: n }, (_, i) => ({ id: `source-${i}` })) }
    const eff = Effect.flatMap(ContextCompiler, (c) => c.compile(req))
    await time(`${name} ${n} sources`, 2000, () => rt.runPromise(eff))
  }
}
process.exit(0)
