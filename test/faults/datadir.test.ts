/**
 * One process at a time on a data directory: two real processes that ingest into one (new)
 * directory at once both succeed, one after the other, and lose nothing; a process that finds the
 * directory in use says which process holds it; a lock left by a dead process is reclaimed; a
 * directory that cannot be created fails at once with its path.
 */
import { Effect, Exit, Layer, Scope } from "effect"
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs"
import { hostname, tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { Embedder } from "../../src/embedding/Embedder.js"
import { StoreEvents } from "../../src/services/StoreEvents.js"
import { PgliteClient } from "../../src/stores/sql/PgliteClient.js"
import { SqlStore } from "../../src/stores/sql/SqlStore.js"
import { pantheon } from "../support/cli.js"

const dir = mkdtempSync(join(tmpdir(), "pantheon-datadir-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const jsonl = (name: string, n: number) => {
  const file = join(dir, `${name}.jsonl`)
  writeFileSync(file, Array.from({ length: n }, (_, i) => JSON.stringify({ id: `${name}-${i}`, text: `${name} entry ${i}`, timestamp: 1_700_000_000_000 + i })).join("\n"))
  return file
}

/** A lock record as a process of this machine and pid namespace writes it. */
const thisMachine = (owner: { readonly pid: number; readonly started: string }) => ({
  ...owner,
  host: hostname(),
  token: "dead",
  boot: readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim(),
  pidNs: readlinkSync("/proc/self/ns/pid")
})

const store = (dataDir: string) =>
  SqlStore.layer().pipe(Layer.provideMerge(Layer.mergeAll(PgliteClient.layer({ dataDir }), Embedder.layerFeatureHashing(), StoreEvents.layerLocal)))

const counts = (dataDir: string) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const s = yield* SqlStore
      const out: Record<string, number> = {}
      for (const d of yield* s.catalog) out[d.id] = yield* s.countEntries(d.id)
      return out
    }).pipe(Effect.provide(store(dataDir)))
  )

describe("a data directory has one writer", () => {
  it("two processes ingesting into one new directory at once both succeed and lose nothing", async () => {
    const data = join(dir, "shared", "data")
    const [a, b] = await Promise.all([
      // The second waits for as long as the first lives (its lock is live): no race against a clock.
      pantheon("ingest", jsonl("alpha", 2000), "--source", "alpha", "--data-dir", data, "--lock-timeout", "3600"),
      pantheon("ingest", jsonl("beta", 2000), "--source", "beta", "--data-dir", data, "--lock-timeout", "3600")
    ])
    expect([a.code, b.code], a.stderr + b.stderr).toEqual([0, 0])
    expect(a.stdout).toContain("Ingested 2000 entries into alpha")
    expect(b.stdout).toContain("Ingested 2000 entries into beta")
    expect(await counts(data)).toEqual({ alpha: 2000, beta: 2000 })
    expect(existsSync(join(data, "pantheon.lock"))).toBe(false)
  }, 180_000)

  it("a process that finds the directory in use fails at once, naming the process that holds it", async () => {
    const data = join(dir, "held")
    const scope = Effect.runSync(Scope.make())
    await Effect.runPromise(Layer.buildWithScope(store(data), scope))
    try {
      const started = Date.now()
      const r = await pantheon("sources", "--data-dir", data, "--lock-timeout", "0")
      expect(r.code).not.toBe(0)
      expect(r.stderr.trim()).toBe(`error: The data directory ${data} is in use by process ${process.pid} (one process at a time: PGlite is single-process)`)
      expect(Date.now() - started).toBeLessThan(20_000)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
    expect(existsSync(join(data, "pantheon.lock"))).toBe(false)
  }, 60_000)

  it("reclaims a lock left by a process that died", async () => {
    const data = join(dir, "stale")
    await Effect.runPromise(
      Effect.gen(function* () {
        const s = yield* SqlStore
        yield* s.registerSource("gamma")
        yield* (yield* s.open("gamma")).insert(Array.from({ length: 5 }, (_, i) => ({ id: `g${i}`, text: `gamma ${i}`, timestamp: i + 1 })))
      }).pipe(Effect.provide(store(data)))
    )
    // A dead process's lock, on this machine: a pid that cannot be alive.
    writeFileSync(join(data, "pantheon.lock"), JSON.stringify(thisMachine({ pid: 2 ** 22 + 7, started: "1" })))
    const r = await pantheon("sources", "--data-dir", data, "--lock-timeout", "0")
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/gamma\s+5 entries/)
    expect(existsSync(join(data, "pantheon.lock"))).toBe(false)
  }, 60_000)

  it("a directory that cannot be created fails fast with its path (Node's recursive mkdir spins under /proc)", async () => {
    const started = Date.now()
    const r = await pantheon("sources", "--data-dir", "/proc/pantheon/data")
    expect(r.code).not.toBe(0)
    expect(r.stderr.trim()).toBe("error: The data directory /proc/pantheon/data cannot be used: cannot create /proc/pantheon: ENOENT")
    expect(Date.now() - started).toBeLessThan(20_000)
  }, 60_000)

  it("within one process, layers on one directory share it (and its lock)", async () => {
    const data = join(dir, "inprocess")
    await Effect.runPromise(
      Effect.gen(function* () {
        const first = yield* PgliteClient
        const second = yield* PgliteClient.pipe(Effect.provide(PgliteClient.layer({ dataDir: data })))
        expect(second.pglite).toBe(first.pglite)
        expect(JSON.parse(readFileSync(join(data, "pantheon.lock"), "utf8")).pid).toBe(process.pid)
      }).pipe(Effect.provide(PgliteClient.layer({ dataDir: data })))
    )
    expect(existsSync(join(data, "pantheon.lock"))).toBe(false)
  }, 60_000)
})
