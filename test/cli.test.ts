/**
 * The command line, run as a child process exactly as a user runs it.
 */
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as CliConfig from "@effect/cli/CliConfig"
import * as Descriptor from "@effect/cli/CommandDescriptor"
import * as HelpDoc from "@effect/cli/HelpDoc"
import { stripVTControlCharacters } from "node:util"
import { afterAll, describe, expect, it } from "vitest"
import { command } from "../src/cli/commands.js"
import { commands, helpText } from "../src/cli/help.js"
import { cliEntry, pantheon, root, run } from "./support/cli.js"
import { freshSchema, query, reachable } from "./support/postgres.js"

const dir = mkdtempSync(join(tmpdir(), "pantheon-cli-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const data = join(dir, "data")

describe("npm start (the main job)", () => {
  it("ingests the sample on first run, compiles twice, and shows the second compile served from cache", async () => {
    const first = await run("npm", ["start", "--silent"], { PANTHEON_DATA_DIR: data })
    expect(first.code).toBe(0)
    expect(first.stdout).toContain("First run: ingesting the sample corpus")
    expect(first.stdout).toMatch(/chat-sessions\s+140 entries/)
    expect(first.stdout).toMatch(/── compiled context: \d+ messages/)
    expect(first.stdout).toMatch(/\[(user|system|assistant)\] /)
    expect(first.stdout).toContain("4 of 4 managers served from cache, 0 loads")
    expect(first.stdout).toContain("0 texts embedded on the second compile")
    expect(first.stdout).toContain("Same context both times: yes")
  }, 120_000)

  it("reuses the stored data on the next run", async () => {
    const second = await run("npm", ["start", "--silent"], { PANTHEON_DATA_DIR: data })
    expect(second.code).toBe(0)
    expect(second.stdout).toContain("Using the stored data")
    expect(second.stdout).not.toContain("First run")
  }, 120_000)
})

describe("subcommands", () => {
  it("sources lists each source with its entry count", async () => {
    const r = await pantheon("sources", "--data-dir", data)
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/agent-tasks\s+80 entries/)
    expect(r.stdout).toMatch(/user-preferences\s+30 entries/)
  }, 60_000)

  it("ingest adds a file to a new source, and compile reads it back as JSON", async () => {
    const file = join(dir, "notes.jsonl")
    writeFileSync(file, ['{"id":"n1","text":"the release train leaves on thursday","timestamp":"2025-06-05T10:00:00Z","metadata":{"displayName":"Ana"}}', "", '{"id":"n2","text":"freeze starts wednesday night","timestamp":1749117600000,"metadata":{"displayName":"Ben"}}'].join("\n"))
    const ingested = await pantheon("ingest", file, "--source", "notes", "--data-dir", data)
    expect(ingested.code).toBe(0)
    expect(ingested.stdout).toContain("Ingested 2 entries into notes (new source)")
    const compiled = await pantheon("compile", "--source", "notes", "--text", "when does the release leave?", "--limit", "5", "--json", "--data-dir", data)
    expect(compiled.code).toBe(0)
    const messages = JSON.parse(compiled.stdout) as Array<{ role: string; content: string }>
    // Both are recent (so relevance excludes them); their times are equal, so the recent block's order stands (ids descending).
    expect(messages.map((m) => m.content)).toEqual([
      "Ben said (2025-06-05T10:00:00.000Z): freeze starts wednesday night",
      "Ana said (2025-06-05T10:00:00.000Z): the release train leaves on thursday"
    ])
  }, 60_000)

  it("stats reports the store", async () => {
    const r = await pantheon("stats", "--data-dir", data)
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/sources:\s+5/)
    expect(r.stdout).toMatch(/entries:\s+342/)
    // One compile of every source found none past queryTimeout.
    expect(r.stdout).toMatch(/slow:\s+none/)
  }, 60_000)
})

const pgUp = await reachable()

describe.skipIf(!pgUp)("npm start against PostgreSQL", () => {
  it("picks the server when PANTHEON_DATABASE_URL is set", async () => {
    const db = await freshSchema("cli")
    try {
      const r = await run("npm", ["start", "--silent"], { PANTHEON_DATABASE_URL: db.url, PANTHEON_DB_CHANNEL: `cli_${db.schema}` })
      expect(r.code).toBe(0)
      expect(r.stdout).toContain("pantheon-persistence: PostgreSQL store, array vectors")
      expect(r.stdout).toContain("4 of 4 managers served from cache, 0 loads")
      expect((await query(`SELECT count(*)::int AS n FROM ${db.schema}.pantheon_sources`))[0].n).toBe(4)
    } finally {
      await db.drop()
    }
  }, 120_000)
})

describe("serve", () => {
  it("serves /metrics and /healthz until interrupted", async () => {
    const child = spawn(process.execPath, [...cliEntry, "serve", "--metrics-port", "0", "--data-dir", data], { cwd: root })
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = ""
        child.stdout.on("data", (chunk) => {
          out += chunk
          const found = out.match(/serving (http:\/\/[\d.:]+)\/metrics/)
          if (found) resolve(found[1]!)
        })
        child.once("exit", (code) => reject(new Error(`serve exited with ${code}: ${out}`)))
      })
      const metrics = await (await fetch(`${url}/metrics`)).text()
      expect(metrics).toMatch(/^pantheon_compile_total\{/m)
      expect(metrics).toMatch(/^pantheon_cache_loads_total\{[^}]*cache="managers"/m)
      const health = await fetch(`${url}/healthz`)
      expect(health.status).toBe(200)
      expect(await health.json()).toMatchObject({ status: "ok", store: { reachable: true, sources: 5 } })
    } finally {
      child.kill("SIGINT")
    }
    expect(await new Promise((resolve) => child.once("exit", resolve))).not.toBeUndefined()
  }, 60_000)
})

describe("errors: one line, non-zero exit, nothing half-written", () => {
  it("a malformed file names the line and writes nothing", async () => {
    const file = join(dir, "bad.jsonl")
    writeFileSync(file, '{"id":"b1","text":"fine","timestamp":1}\n{"id":"b2","text":"no time"}\n')
    const r = await pantheon("ingest", file, "--source", "broken", "--data-dir", data)
    expect(r.code).not.toBe(0)
    expect(r.stderr.trim()).toMatch(/^error: .*bad\.jsonl:2: timestamp/)
    expect(r.stderr.trim().split("\n")).toHaveLength(1)
    const sources = await pantheon("sources", "--data-dir", data)
    expect(sources.stdout).not.toContain("broken")
  }, 60_000)

  it("a write that fails half-way through a file rolls the whole file back", async () => {
    const file = join(dir, "half.jsonl")
    const good = Array.from({ length: 60 }, (_, i) => JSON.stringify({ id: `h${i}`, text: `line ${i}`, timestamp: 1_700_000_000_000 + i }))
    // Postgres refuses NUL in text: the second batch fails after the first was written.
    writeFileSync(file, [...good, JSON.stringify({ id: "h60", text: "nul \u0000 here", timestamp: 1 })].join("\n"))
    const r = await pantheon("ingest", file, "--source", "halfway", "--data-dir", data)
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(/^error: /)
    const sources = await pantheon("sources", "--data-dir", data)
    expect(sources.stdout).not.toContain("halfway")
  }, 60_000)

  it("a bad command line is a usage error: exit code 2, one `error:` line that points at the command's help", async () => {
    const cases: Array<[Array<string>, string]> = [
      [["compile"], "error: Expected at least 1 value(s) for option: '--source' (see `pantheon-persistence compile --help`)"],
      [["compile", "--source", "notes", "--limit", "many"], "error: --limit: 'many' is not an integer (see `pantheon-persistence compile --help`)"],
      [["compile", "--source", "notes", "--limit", "0"], "error: --limit must be at least 1 (got 0) (see `pantheon-persistence compile --help`)"],
      [["frobnicate"], "error: Invalid subcommand for pantheon-persistence - use one of 'sources', 'ingest', 'compile', 'stats', 'serve' (see `pantheon-persistence --help`)"]
    ]
    for (const [args, line] of cases) {
      const r = await pantheon(...args, "--data-dir", data)
      expect(r.code, args.join(" ")).toBe(2)
      expect(r.stdout, args.join(" ")).toBe("")
      expect(r.stderr, args.join(" ")).toBe(`${line}\n`)
    }
  }, 120_000)

  it("a bad environment variable is named with its field, exit code 1", async () => {
    const r = await run(process.execPath, [...cliEntry, "stats", "--data-dir", "memory://"], { PANTHEON_CACHE_TTL: "-5" })
    expect(r.code).toBe(1)
    expect(r.stderr).toBe('error: Invalid configuration: PANTHEON_CACHE_TTL: ttl must not be negative (got "-5")\n')
  }, 60_000)

  it("an empty store's hint names the bin, not npm start", async () => {
    const r = await pantheon("sources", "--data-dir", "memory://")
    expect(r.code).toBe(0)
    expect(r.stdout.trim()).toBe("No sources yet: run `pantheon-persistence` (it ingests the bundled sample) or `pantheon-persistence ingest <file.jsonl> --source <id>`.")
  }, 60_000)

  it("a missing file, an unknown source, a bad source id and bad arguments", async () => {
    const cases: Array<[Array<string>, RegExp]> = [
      [["ingest", join(dir, "nope.jsonl"), "--source", "x"], /cannot be read \(ENOENT\)/],
      [["compile", "--source", "ghost"], /unknown source "ghost" \(known: .*chat-sessions/],
      [["ingest", join(dir, "notes.jsonl"), "--source", "x'; drop table pantheon_sources; --"], /Invalid source id/],
      [["compile"], /--source/],
      [["compile", "--source", "notes", "--limit", "many"], /integer/],
      [["frobnicate"], /Invalid subcommand/]
    ]
    for (const [args, message] of cases) {
      const r = await pantheon(...args, "--data-dir", data)
      expect(r.code, args.join(" ")).not.toBe(0)
      expect(r.stdout + r.stderr).toMatch(message)
      expect((r.stdout + r.stderr).trim().split("\n").filter((l) => l.trim()).length, args.join(" ")).toBe(1)
    }
  }, 120_000)
})

describe("help", () => {
  it("is plain text with the bin's name, every command, and the options of every command", async () => {
    const r = await pantheon("--help")
    expect(r.code).toBe(0)
    expect(r.stdout).not.toMatch(/\x1b/)
    expect(r.stdout).toContain("Usage: pantheon-persistence [command] [options]")
    for (const c of commands.filter((c) => c.name !== "")) expect(r.stdout).toContain(`  ${c.synopsis}`)
    for (const flag of ["--data-dir <dir>", "--lock-timeout <seconds>", "--verbose", "--quiet", "-h, --help", "--version"]) expect(r.stdout).toContain(flag)
    expect(r.stdout).not.toContain("npm start")
    expect(Math.max(...r.stdout.split("\n").map((l) => l.length))).toBeLessThanOrEqual(100)
  }, 60_000)

  it("of a command: its usage line, optional options in brackets, and what --limit limits", async () => {
    const r = await pantheon("compile", "--help")
    expect(r.code).toBe(0)
    expect(r.stdout).not.toMatch(/\x1b/)
    expect(r.stdout.split("\n")[0]).toBe("Usage: pantheon-persistence compile --source <id>... [--text <text>]... [--limit <n>] [--max-tokens <n>] [--json] [options]")
    expect(r.stdout).toMatch(/--max-tokens <n> +A token budget/)
    expect(r.stdout).toMatch(/--limit <n> +Entries each relevance search returns per source \(default 20, at least\s+1\)/)
    expect(r.stdout).toMatch(/--text <text> +A question[^-]*\(optional/)
    expect(r.stdout).toContain("--verbose")
  }, 60_000)

  it("names every option the parser accepts (and no other)", () => {
    const parser = stripVTControlCharacters(HelpDoc.toAnsiText(Descriptor.getHelp(command.descriptor, CliConfig.defaultConfig)))
    // @effect/cli's own extras, which work but are not advertised.
    const builtIns = new Set(["--completions", "--log-level", "--wizard"])
    const accepted = new Set([...parser.matchAll(/--[a-z][a-z-]*/g)].map((m) => m[0]).filter((f) => !builtIns.has(f)))
    const documented = new Set(commands.flatMap((c) => [...helpText("0", c.name)!.matchAll(/--[a-z][a-z-]*/g)].map((m) => m[0])))
    for (const flag of accepted) expect(documented.has(flag), flag).toBe(true)
    for (const flag of documented) expect(accepted.has(flag) || ["--verbose", "--quiet"].includes(flag), flag).toBe(true)
  })
})
