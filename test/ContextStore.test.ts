/**
 * createContextStore: the Promise API over the embedded store (real PGlite) and a PostgreSQL server
 * (the real one; skipped with a warning when it is unreachable, failing in CI). Its calls reject
 * with the Effect API's own error classes.
 */
import { execFile, spawn } from "node:child_process"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { afterAll, afterEach, describe, expect, it } from "vitest"
import {
  AdapterDisposed,
  type ContextStore,
  createContextStore,
  DataDirUnavailable,
  InvalidCompileRequest,
  InvalidConfig,
  InvalidSourceId,
  StoreQueryError,
  StoreUnavailable
} from "../src/index.js"
import { root } from "./support/cli.js"
import { schemaForFile } from "./support/postgres.js"

const exec = promisify(execFile)
const db = await schemaForFile("ctxstore")
const work = mkdtempSync(join(tmpdir(), "pantheon-ctxstore-"))
afterAll(() => rmSync(work, { recursive: true, force: true }))

const stores: Array<ContextStore> = []
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.dispose()))
})
const open = (...args: Parameters<typeof createContextStore>) => {
  const store = createContextStore(...args)
  stores.push(store)
  return store
}

const entries = [
  { id: "1", text: "the deploy made checkout slow", timestamp: "2024-01-01T00:00:01Z", metadata: { displayName: "Ann" } },
  { id: "2", text: "lunch is at noon", timestamp: "2024-01-01T00:00:02Z", metadata: { displayName: "Bob" } }
]

/** What every kind of store must do, from registration to disposal. */
const behaves = async (store: ContextStore) => {
  const descriptor = await store.registerSource("chat", { label: "Chat" })
  expect(descriptor).toMatchObject({ id: "chat", label: "Chat" })
  await store.insert("chat", entries)
  const messages = await store.compile({ sources: [{ id: "chat" }], texts: ["why is checkout slow?"], recentLimit: 1, limit: 1 })
  expect(messages.map((m) => m.content)).toContain("Ann said (2024-01-01T00:00:01.000Z): the deploy made checkout slow")
  expect((await store.sources()).map((s) => s.id)).toEqual(["chat"])
  const stats = await store.stats()
  expect(stats.managers.loads).toBe(1)
  expect(stats.embeddings.misses).toBeGreaterThan(0)
  // A write is seen by the next compile (the cached manager follows the store's events).
  await store.insert("chat", [{ id: "3", text: "checkout is fast again", timestamp: "2024-01-01T00:00:03Z", metadata: { displayName: "Cy" } }])
  expect((await store.compile({ sources: [{ id: "chat" }], recentLimit: 1 })).map((m) => m.content)).toContain("Cy said (2024-01-01T00:00:03.000Z): checkout is fast again")
  await store.invalidate("chat")
  await store.compile({ sources: [{ id: "chat" }] })
  expect((await store.stats()).managers.loads).toBe(2)
}

describe("createContextStore on the embedded store", () => {
  it("registers, inserts, compiles, lists, counts and invalidates", async () => {
    await behaves(open({ dataDir: "memory://" }, { cache: { ttl: "10 minutes" } }))
  })

  it("rejects with the Effect API's own error classes", async () => {
    const store = open({ dataDir: "memory://" })
    const bad = await store.registerSource("no spaces allowed").catch((e: unknown) => e)
    expect(bad).toBeInstanceOf(InvalidSourceId)
    expect(bad).toBeInstanceOf(Error)
    expect(await store.insert("missing", entries).catch((e: unknown) => e)).toBeInstanceOf(StoreUnavailable)
    await store.registerSource("chat")
    const entry = await store.insert("chat", [{ id: "x", text: "t", timestamp: "not a time", metadata: {} }]).catch((e: unknown) => e)
    expect(entry).toBeInstanceOf(StoreQueryError)
    expect((entry as StoreQueryError).reason).toContain("invalid timestamp")
    const request = await store.compile({ sources: "chat" } as never).catch((e: unknown) => e)
    expect(request).toBeInstanceOf(InvalidCompileRequest)
    const aborted = new AbortController()
    aborted.abort(new Error("the caller gave up"))
    expect(await store.compile({ sources: [{ id: "chat" }] }, { signal: aborted.signal }).catch((e: unknown) => e)).toBe(aborted.signal.reason)
    await store.dispose()
    expect(await store.sources().catch((e: unknown) => e)).toBeInstanceOf(AdapterDisposed)
  })

  it("refuses a bad target or configuration at once, naming the field", () => {
    expect(() => createContextStore({} as never)).toThrow(InvalidConfig)
    expect(() => createContextStore({ dataDir: "" })).toThrow("target.dataDir")
    expect(() => createContextStore({ databaseUrl: "mysql://u:secret@h/db" })).toThrow("target.databaseUrl")
    expect(() => createContextStore({ databaseUrl: "mysql://u:secret@h/db" })).not.toThrow("secret")
    expect(() => createContextStore({ dataDir: "memory://" }, { cache: { ttl: -1 } })).toThrow("ttl must not be negative")
  })

  it("rejects with DataDirUnavailable while another process holds the directory, and opens once it is free", async () => {
    const dataDir = join(work, "held")
    const holder = startScript(
      "holder",
      [`const store = createContextStore({ dataDir: ${JSON.stringify(dataDir)} })`, 'await store.registerSource("chat")', 'console.log("ready")', "setInterval(() => {}, 1000)"].join("\n")
    )
    try {
      await holder.ready
      const store = open({ dataDir })
      const held = await store.sources().catch((e: unknown) => e)
      expect(held).toBeInstanceOf(DataDirUnavailable)
      expect((held as DataDirUnavailable).message).toContain(`in use by process ${holder.child.pid}`)
      holder.child.kill("SIGKILL")
      await holder.exited
      // The failed open is not kept: the next call opens the directory (its owner is gone).
      expect((await store.sources()).map((s) => s.id)).toEqual(["chat"])
    } finally {
      holder.child.kill("SIGKILL")
    }
  }, 120_000)
})

describe.skipIf(!db.up)("createContextStore on a PostgreSQL server", () => {
  const channel = `pantheon_test_${Math.random().toString(36).slice(2, 8)}`
  it("registers, inserts, compiles, lists, counts and invalidates", async () => {
    await behaves(open({ databaseUrl: db.url, channel, maxConnections: 3 }, { cache: { ttl: "10 minutes" } }))
  })

  it("sees another instance's writes", async () => {
    const a = open({ databaseUrl: db.url, channel, maxConnections: 3 }, { cache: { ttl: "10 minutes" } })
    const b = open({ databaseUrl: db.url, channel, maxConnections: 3 }, { cache: { ttl: "10 minutes" } })
    await a.registerSource("shared")
    await a.insert("shared", [entries[0]!])
    expect(await b.compile({ sources: [{ id: "shared" }] })).toHaveLength(1)
    await a.insert("shared", [entries[1]!])
    const deadline = Date.now() + 10_000
    while ((await b.compile({ sources: [{ id: "shared" }] })).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    expect(await b.compile({ sources: [{ id: "shared" }] })).toHaveLength(2)
  })
})

/** A script run from the sources (through tsx) in a child process, importing the package's index. */
const scriptFile = (name: string, body: string) => {
  const file = join(work, `${name}.mts`)
  writeFileSync(file, [`import { createContextStore, makePantheonPersistenceAdapter } from ${JSON.stringify(join(root, "src", "index.ts"))}`, body].join("\n"))
  return file
}

/** Runs a script that must exit by itself, with code 0, within `deadline` ms (else it is killed and the test fails). */
const runScript = async (name: string, body: string, deadline: number) =>
  (await exec(process.execPath, ["--import", "tsx", scriptFile(name, body)], { cwd: root, timeout: deadline, killSignal: "SIGKILL" })).stdout

/** Starts a script that prints "ready" once it holds what it opens, and runs until killed. */
const startScript = (name: string, body: string) => {
  const child = spawn(process.execPath, ["--import", "tsx", scriptFile(name, body)], { cwd: root, stdio: ["ignore", "pipe", "inherit"] })
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const ready = new Promise<void>((resolve, reject) => {
    let out = ""
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString()
      if (out.includes("ready")) resolve()
    })
    child.once("exit", (code) => reject(new Error(`${name} exited (${code}) before it was ready`)))
  })
  return { child, ready, exited }
}

describe("a script that forgets dispose()", () => {
  // Generous deadlines: the point is that the process ends by itself (it never did), not how fast.
  it("exits by itself after using the Pantheon adapter", async () => {
    const stdout = await runScript(
      "adapter",
      [
        'const manager = { name: "chat", getMostRecent: async () => [{ id: "1", text: "hi", timestamp: 1, metadata: {} }], getMostRelevant: async () => [] }',
        "const adapter = makePantheonPersistenceAdapter({ getStoreManagers: async () => [manager] })",
        'console.log((await adapter.compile({ sources: [{ id: "chat" }], texts: ["hi?"] })).length)'
      ].join("\n"),
      60_000
    )
    expect(stdout.trim()).toBe("1")
  }, 90_000)

  it("stays alive while a call is in flight, even when only a deadline of the library's is pending", async () => {
    const stdout = await runScript(
      "in-flight",
      [
        "const adapter = makePantheonPersistenceAdapter({ getStoreManagers: () => new Promise(() => {}) }, { loadTimeout: 300 })",
        'const failure = await adapter.compile({ sources: [{ id: "chat" }] }).catch((e) => e)',
        "console.log(failure._tag)"
      ].join("\n"),
      60_000
    )
    expect(stdout.trim()).toBe("CatalogUnavailable")
  }, 90_000)

  it("exits by itself after using the embedded store, and lets go of its directory", async () => {
    const dataDir = join(work, "forgotten")
    const stdout = await runScript(
      "embedded",
      [
        `const store = createContextStore({ dataDir: ${JSON.stringify(dataDir)} })`,
        'await store.registerSource("chat")',
        `await store.insert("chat", ${JSON.stringify(entries)})`,
        'console.log((await store.compile({ sources: [{ id: "chat" }], texts: ["checkout?"] })).length)'
      ].join("\n"),
      120_000
    )
    expect(Number(stdout.trim())).toBeGreaterThan(0)
    // It closed the store on its way out (the lock is gone, not left for the next process to reclaim), with the data kept.
    expect(existsSync(join(dataDir, "pantheon.lock"))).toBe(false)
    const again = open({ dataDir })
    expect(await again.compile({ sources: [{ id: "chat" }], texts: ["checkout?"] })).not.toHaveLength(0)
  }, 150_000)
})
