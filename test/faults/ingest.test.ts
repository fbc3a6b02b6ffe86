/**
 * An ingest is all or nothing, and says which: a signal (SIGINT, SIGTERM) at any point of a
 * 50,000-line ingest exits 130 / 143 with `interrupted: nothing was written` and leaves the source as
 * it was, on the embedded store and on the server; what PostgreSQL would refuse is refused before
 * anything is written, with its line; progress shows on a terminal only. The points at which a
 * signal is sent are seen in what the process does (its lock taken, its progress), not guessed by a clock.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Either } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { INTERRUPTED, parseJsonl } from "../../src/cli/ingest.js"
import { cliEntry, pantheon, root, run } from "../support/cli.js"
import { makeProxy, schemaForFile } from "../support/postgres.js"

const dir = mkdtempSync(join(tmpdir(), "pantheon-ingest-"))
const children: Array<ChildProcess> = []
afterAll(() => {
  for (const child of children) child.kill("SIGKILL")
  rmSync(dir, { recursive: true, force: true })
})

const writeJsonl = (name: string, lines: ReadonlyArray<unknown>) => {
  const file = join(dir, name)
  writeFileSync(file, lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n"))
  return file
}
const entries = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, text: `${prefix} entry ${i} about the deploy`, timestamp: 1_700_000_000_000 + i }))

const big = writeJsonl("big.jsonl", entries(50_000, "big"))
const data = join(dir, "data")

/** The ingest of `big` on a terminal (script(1) gives it one), with everything it printed so far. */
const ingestOnTty = (env: Record<string, string>, source = "chat") => {
  const command = `exec ${process.execPath} ${cliEntry.join(" ")} ingest ${big} --source ${source} --data-dir ${data} --lock-timeout 600`
  const child = spawn("script", ["-qefc", command, "/dev/null"], { cwd: root, env: { ...process.env, ...env, COLUMNS: "200" }, stdio: ["pipe", "pipe", "pipe"] })
  children.push(child)
  let output = ""
  const changed: Array<() => void> = []
  child.stdout!.on("data", (chunk: Buffer) => {
    output += chunk.toString()
    for (const f of changed.splice(0)) f()
  })
  const exit = new Promise<number>((resolve) => child.once("exit", (code, signal) => resolve(code ?? (signal === "SIGTERM" ? 143 : 130))))
  /** Resolves once `until` holds of what it printed (checked on every chunk). */
  const seen = async (until: (output: string) => boolean) => {
    while (!until(output)) {
      if (child.exitCode !== null) throw new Error(`the ingest ended before the point was reached:\n${output}`)
      await new Promise<void>((r) => changed.push(r))
    }
  }
  /** The pid of the CLI itself (script's child), from /proc. */
  const cliPid = () => Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").trim().split(" ")[0])
  return { child, exit, seen, cliPid, output: () => output }
}

const done = (output: string) => [...output.matchAll(/(\d+)\/50000 entries/g)].map((m) => Number(m[1]))
/** The last line a terminal would show: escape codes removed, redrawn lines (\r) reduced to their last. */
const lastLine = (output: string) =>
  output
    .replace(/\x1b8/g, "\r") // cli-progress redraws from a saved cursor position (ESC 7 / ESC 8)
    .replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b7/g, "")
    .split(/\r?\n|\r/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .at(-1)

const pg = await schemaForFile("ingest_signal")

const cli = (env: Record<string, string>, ...args: Array<string>) => run(process.execPath, [...cliEntry, ...args], env)

describe.each([
  ["the embedded store", false],
  ["a PostgreSQL server", true]
] as const)("a signal during a 50,000-line ingest, on %s", (_, server) => {
  let env: Record<string, string> = {}
  const up = !server || pg.up
  beforeAll(async () => {
    if (!up) return
    env = server ? { PANTHEON_DATABASE_URL: pg.url } : {}
    // The source holds 3 entries before: what every interrupted ingest must leave.
    const r = await cli(env, "ingest", writeJsonl("before.jsonl", entries(3, "before")), "--source", "chat", "--data-dir", data, "--lock-timeout", "600")
    expect(r.code, r.stderr).toBe(0)
  }, 180_000)

  const points: Array<[string, NodeJS.Signals, (output: string) => boolean]> = [
    ["once inserting has begun", "SIGTERM", (o) => done(o).some((n) => n > 0)],
    ["half way", "SIGINT", (o) => done(o).some((n) => n >= 25_000)]
  ]
  // The lock is taken once the file is read and the store opens.
  if (!server) points.unshift(["while the store opens", "SIGINT", () => existsSync(join(data, "pantheon.lock"))])

  it.each(points)("%s: %s exits 128 + its number, says nothing was written, and the source is as it was", async (_, signal, point) => {
    if (!up) return
    const ingest = ingestOnTty(env)
    await ingest.seen(point)
    process.kill(ingest.cliPid(), signal)
    expect(await ingest.exit).toBe(signal === "SIGINT" ? 130 : 143)
    expect(ingest.output()).not.toContain("Ingested")
    expect(lastLine(ingest.output())).toBe(INTERRUPTED)
    // On a terminal it showed its progress: entries done, the rate and the time left.
    if (done(ingest.output()).length > 0) expect(ingest.output()).toMatch(/\d+\/50000 entries \| \d+ entries\/s \| \S+ left/)
    const after = await cli(env, "sources", "--data-dir", data, "--lock-timeout", "600")
    expect(after.stdout).toMatch(/chat\s+3 entries/)
  }, 300_000)
})

describe("what PostgreSQL would refuse is refused before anything is written, with its line", () => {
  const refusal = (lines: ReadonlyArray<unknown>) => {
    const parsed = parseJsonl(lines.map((l) => JSON.stringify(l)).join("\n"), "f.jsonl")
    return Either.isLeft(parsed) ? parsed.left.message : "accepted"
  }
  const ok = { id: "a", text: "fine", timestamp: 1 }

  it("a NUL character in a text, an id, a metadata value or key (it used to fail the file at insert, without a line)", () => {
    expect(refusal([ok, { ...ok, id: "b", text: "nul \u0000 here" }])).toBe("f.jsonl:2: text: holds a NUL character (\\u0000), which PostgreSQL cannot store")
    expect(refusal([{ ...ok, id: "a\u0000" }])).toBe("f.jsonl:1: id: holds a NUL character (\\u0000), which PostgreSQL cannot store")
    expect(refusal([{ ...ok, metadata: { tags: ["x", "\u0000"] } }])).toBe("f.jsonl:1: metadata.tags.1: holds a NUL character (\\u0000), which PostgreSQL cannot store")
    expect(refusal([{ ...ok, metadata: { "k\u0000": 1 } }])).toMatch(/^f\.jsonl:1: metadata: the key "k\\u0000" holds a NUL character/)
  })

  it("a lone surrogate is refused; a paired one (an emoji) and a text that merely shows \\u0000 are kept", () => {
    expect(refusal([ok, ok, { ...ok, id: "c", metadata: { name: "half \ud83d" } }])).toMatch(/^f\.jsonl:2: id "a" is also on line 1/)
    expect(refusal([{ ...ok, metadata: { name: "half \ud83d" } }])).toBe(
      "f.jsonl:1: metadata.name: holds a lone surrogate (half of a UTF-16 pair), which is not Unicode text PostgreSQL can store"
    )
    expect(refusal([{ ...ok, text: "lone \udc00 low" }])).toMatch(/^f\.jsonl:1: text: holds a lone surrogate/)
    expect(refusal([{ ...ok, text: "an emoji 😀 and a backslash-u0000: \\u0000" }])).toBe("accepted")
  })

  it("an id given twice in one file is refused naming both lines (it used to report 5001 entries with 5000 stored)", () => {
    expect(refusal([ok, { ...ok, id: "b" }, { ...ok, text: "again" }])).toBe('f.jsonl:3: id "a" is also on line 1 (an id may appear once in a file)')
  })

  it("the count printed is what was stored: entries that replaced ones with the same id are said to", async () => {
    const d = join(dir, "counted")
    const first = await pantheon("ingest", writeJsonl("first.jsonl", entries(3, "e")), "--source", "c", "--data-dir", d, "--quiet")
    expect(first.stdout.trim()).toBe("Ingested 3 entries into c (new source).")
    const second = await pantheon("ingest", writeJsonl("second.jsonl", entries(5, "e").slice(1)), "--source", "c", "--data-dir", d, "--quiet")
    expect(second.stdout.trim()).toBe("Ingested 4 entries into c; 2 of them replaced entries with the same id.")
    expect((await pantheon("sources", "--data-dir", d)).stdout).toMatch(/c\s+5 entries/)
  }, 120_000)
})

describe("progress", () => {
  it("when output is not a terminal, nothing but the final line", async () => {
    const r = await pantheon("ingest", writeJsonl("small.jsonl", entries(500, "s")), "--source", "small", "--data-dir", "memory://")
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toBe("")
    expect(r.stdout).toBe("Ingested 500 entries into small (new source).\n")
  }, 60_000)

  it("on a terminal with --quiet, nothing but the final line", async () => {
    const file = writeJsonl("quiet.jsonl", entries(2_000, "q"))
    const r = await run("script", ["-qefc", `exec ${process.execPath} ${cliEntry.join(" ")} ingest ${file} --source q --data-dir memory:// --quiet`, "/dev/null"])
    expect(r.code).toBe(0)
    expect(r.stdout.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").trim()).toBe("Ingested 2000 entries into q (new source).")
  }, 60_000)
})

describe.skipIf(!pg.up)("the server lost during an ingest", () => {
  it("is a StoreUnavailable with the server's reason, not an unexpected failure, and nothing is written", async () => {
    const proxy = await makeProxy()
    try {
      const ingest = ingestOnTty({ PANTHEON_DATABASE_URL: proxy.url(pg.url) }, "lost")
      await ingest.seen((o) => done(o).some((n) => n > 0))
      await proxy.cut()
      expect(await ingest.exit).toBe(1)
      const line = lastLine(ingest.output())!
      expect(line).toMatch(/^error: Store "lost" unavailable: the ingest was not committed: \S/)
      expect(line).not.toContain("unexpected failure")
    } finally {
      await proxy.close()
    }
    const after = await cli({ PANTHEON_DATABASE_URL: pg.url }, "sources")
    expect(after.stdout).not.toContain("lost")
  }, 300_000)
})
