import { Effect, Layer } from "effect"
import { EmbeddedStoreLive } from "../src/layers/EmbeddedStoreLive.js"
import { PersistenceAdapterLive } from "../src/layers/PersistenceAdapterLive.js"
import { ContextCompiler } from "../src/services/ContextCompiler.js"
await Effect.runPromise(Effect.gen(function* () {
  const c = yield* ContextCompiler
  const req = { texts: ["Why is checkout slow after the deploy?"], sources: [{ id: "chat-sessions" }, { id: "system-logs" }, { id: "agent-tasks" }] }
  for (let i = 0; i < 30; i++) yield* c.compile(req)
  const t0 = performance.now()
  for (let i = 0; i < 100; i++) yield* c.compile(req)
  console.log(((performance.now() - t0) / 100).toFixed(2), "ms/compile")
}).pipe(Effect.provide(PersistenceAdapterLive({ cache: {} }).pipe(Layer.provideMerge(EmbeddedStoreLive({ dataDir: "./.pantheon/data" }))))))
