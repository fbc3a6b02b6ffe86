import { Effect, Layer, ManagedRuntime } from "effect"
import { PersistenceAdapterLive, managersBackend, ContextCompiler } from "/work/main/src/index.js"
const fakeEntries = (source: string, n: number, offset: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `${source}-${i + offset}`, text: `${source} message ${i + offset}`, timestamp: 1_700_000_000_000 + (i + offset) * 1000, metadata: { displayName: `user${i % 5}`, type: "chat" } }))
const pureManagers = Array.from({ length: 16 }, (_, s) => { const name = `source-${s}`; const recent = fakeEntries(name, 10, 0); const rel = fakeEntries(name, 5, 100); return { name, getMostRecent: () => Effect.succeed(recent), getMostRelevant: (q: any, l: number, w: any) => Effect.succeed(w?.type === "image" ? [] : rel), insert: () => Effect.void } })
const rt = ManagedRuntime.make(PersistenceAdapterLive({ cache: {} }).pipe(Layer.provide(managersBackend(pureManagers as any))))
const req = { texts: ["q"], sources: [{ id: "source-0" }] }
const eff = Effect.flatMap(ContextCompiler, (c) => c.compile(req))
for (let round = 0; round < 5; round++) {
  const t0 = performance.now()
  for (let i = 0; i < 2000; i++) await rt.runPromise(eff)
  global.gc!(); console.log(round, ((performance.now() - t0) / 2).toFixed(0), "us/compile", (process.memoryUsage().heapUsed / 1e6).toFixed(1), "MB")
}
process.exit(0)
