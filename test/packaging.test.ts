/**
 * The package as a consumer gets it: built from the sources into a staging copy (never the
 * repository's dist/, which other test files may be running), packed with `npm pack`, unpacked into
 * a consumer project whose node_modules holds the library's dependencies but none of its optional
 * peers. No registry is involved: the consumer's other packages are links to this repository's.
 */
import { execFile } from "node:child_process"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { optionalPeers } from "../src/optionalPeers.js"
import { root } from "./support/cli.js"

const exec = promisify(execFile)
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  version: string
  files: Array<string>
  bin: Record<string, string>
  dependencies: Record<string, string>
  peerDependencies: Record<string, string>
  peerDependenciesMeta: Record<string, { optional?: boolean }>
}

const work = mkdtempSync(join(tmpdir(), "pantheon-pack-"))
const consumer = join(work, "consumer")
const installed = join(consumer, "node_modules", "pantheon-persistence")
let packed: Array<string> = []
afterAll(() => rmSync(work, { recursive: true, force: true }))

/** The consumer's node_modules: a link to each of this repository's packages, except the optional peers. */
const linkDependencies = () => {
  const from = join(root, "node_modules")
  const to = join(consumer, "node_modules")
  for (const entry of readdirSync(from)) {
    const names = entry.startsWith("@") ? readdirSync(join(from, entry)).map((n) => `${entry}/${n}`) : [entry]
    for (const name of names) {
      if (name in optionalPeers || name === "pantheon-persistence") continue
      mkdirSync(dirname(join(to, name)), { recursive: true })
      symlinkSync(join(from, name), join(to, name))
    }
  }
}

beforeAll(async () => {
  const stage = join(work, "stage")
  mkdirSync(stage)
  // dist is built fresh below: a stale one (or none, in a new checkout) never reaches the package.
  for (const file of ["package.json", ...pkg.files.filter((f) => f !== "dist")]) cpSync(join(root, file), join(stage, file), { recursive: true })
  await exec(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "tsconfig.build.json"), "--outDir", join(stage, "dist")])
  const { stdout } = await exec("npm", ["pack", "--json", "--pack-destination", work], { cwd: stage })
  const [report] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>
  packed = report!.files.map((f) => f.path)
  mkdirSync(installed, { recursive: true })
  await exec("tar", ["-xzf", join(work, report!.filename), "-C", installed, "--strip-components=1"])
  writeFileSync(join(consumer, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }))
  linkDependencies()
}, 240_000)

/** Runs node in the consumer project. */
const node = (args: Array<string>) =>
  exec(process.execPath, args, { cwd: consumer, env: { ...process.env, NO_COLOR: "1" } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (e: { code?: number; stdout: string; stderr: string }) => ({ code: e.code ?? 1, stdout: e.stdout, stderr: e.stderr })
  )

/** The modules a script loads from node_modules (`package/path`), as a resolve hook sees them. */
const modulesLoadedBy = async (script: string) => {
  writeFileSync(join(consumer, "hooks.mjs"), [
    "export async function resolve(specifier, context, next) {",
    "  const r = await next(specifier, context)",
    "  const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+\\/.*)$/.exec(r.url)",
    "  if (m) process.stderr.write(`loaded ${m[1]}\\n`)",
    "  return r",
    "}"
  ].join("\n"))
  writeFileSync(join(consumer, "register.mjs"), 'import { register } from "node:module"\nregister("./hooks.mjs", import.meta.url)\n')
  const r = await node(["--import", "./register.mjs", "--input-type=module", "-e", script])
  expect(r.code, r.stderr).toBe(0)
  return new Set([...r.stderr.matchAll(/^loaded (.+)$/gm)].map((m) => m[1]!))
}

/** The packages a script loads. */
const packagesLoadedBy = async (script: string) =>
  new Set([...(await modulesLoadedBy(script))].map((path) => /^(?:@[^/]+\/)?[^/]+/.exec(path)![0]))

describe("the packed tarball", () => {
  it("ships the built code, the README and every file the README links, and no sources", () => {
    expect(packed).toContain("dist/index.js")
    expect(packed).toContain("dist/cli/main.js")
    expect(packed.some((f) => f.startsWith("src/"))).toBe(false)
    const readme = readFileSync(join(root, "README.md"), "utf8")
    const links = [...readme.matchAll(/\]\(([^)#\s]+)\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l))
    expect(links).toContain("bench/results/w3-hit-rates.svg")
    for (const link of links) expect(existsSync(join(installed, link)), `README links ${link}`).toBe(true)
  })

  it("ships source maps that carry their sources", () => {
    const maps = packed.filter((f) => f.endsWith(".js.map"))
    expect(maps.length).toBeGreaterThan(10)
    for (const map of maps) {
      const { sources, sourcesContent } = JSON.parse(readFileSync(join(installed, map), "utf8")) as { sources: Array<string>; sourcesContent?: Array<string> }
      expect(sourcesContent?.length, map).toBe(sources.length)
    }
  })

  it("lists the command line's and the metrics endpoint's packages as optional peers, not as dependencies", () => {
    for (const [name, range] of Object.entries(optionalPeers)) {
      expect(pkg.dependencies[name], name).toBeUndefined()
      expect(pkg.peerDependencies[name], name).toBe(range)
      expect(pkg.peerDependenciesMeta[name]?.optional, name).toBe(true)
    }
    for (const unused of ["@effect/printer", "@effect/printer-ansi", "@opentelemetry/api", "@opentelemetry/sdk-metrics"]) {
      expect(pkg.dependencies[unused], unused).toBeUndefined()
    }
  })
})

describe("a consumer of the package", () => {
  it("imports it without loading PGlite, pg, usearch, OpenTelemetry, an HTTP client or the command line's packages; the embedded store loads PGlite", async () => {
    const heavy = ["@electric-sql/pglite", "pg", "usearch", "@effect/sql-pg", "@effect/opentelemetry", "@opentelemetry/exporter-prometheus", "@effect/cli", "@effect/platform-node"]
    const modules = await modulesLoadedBy('await import("pantheon-persistence")')
    const atImport = new Set([...modules].map((path) => /^(?:@[^/]+\/)?[^/]+/.exec(path)![0]))
    expect(atImport.has("effect")).toBe(true)
    for (const name of heavy) expect(atImport.has(name), name).toBe(false)
    // The HTTP embedders (Ollama, OpenAI-compatible) and their client load with their layer, not at import.
    expect([...modules].filter((path) => /^@effect\/platform\/.*Http/.test(path))).toEqual([])
    const withStore = await packagesLoadedBy(
      'const { Effect, Layer } = await import("effect"); const p = await import("pantheon-persistence");' +
        'await Effect.runPromise(Effect.scoped(Layer.build(p.EmbeddedStoreLive({ dataDir: "memory://" }))))'
    )
    expect(withStore.has("@electric-sql/pglite")).toBe(true)
  }, 120_000)

  it("is told the package is ESM-only when it calls require()", async () => {
    const r = await node(["-e", 'require("pantheon-persistence")'])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain("pantheon-persistence is an ES module (ESM-only, Node 20 or later)")
  })

  it("type-checks with skipLibCheck: false (PGlite's own declarations never reach it), with the README's TypeScript snippets, under moduleResolution node16 and bundler", async () => {
    writeFileSync(join(consumer, "index.ts"), [
      'import { Effect, Layer } from "effect"',
      'import { ContextCompiler, EmbeddedStoreLive, makePantheonPersistenceAdapter, PersistenceAdapterLive, PgliteClient, SqlStore } from "pantheon-persistence"',
      'const Live = PersistenceAdapterLive({ cache: { ttl: "5 minutes" } }).pipe(Layer.provideMerge(EmbeddedStoreLive({ dataDir: "memory://" })))',
      "export const program = Effect.gen(function* () {",
      '  yield* (yield* SqlStore).registerSource("chat")',
      "  const closed: boolean = (yield* PgliteClient).pglite.closed",
      '  return [closed, yield* (yield* ContextCompiler).compile({ sources: [{ id: "chat" }], texts: ["hi?"] })] as const',
      "}).pipe(Effect.provide(Live))",
      "export const adapter = makePantheonPersistenceAdapter({ getStoreManagers: async () => [] })"
    ].join("\n"))
    // Each snippet a module of its own, as a reader pastes it.
    const readme = readFileSync(join(installed, "README.md"), "utf8")
    const snippets = [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!)
    expect(snippets.length).toBeGreaterThanOrEqual(3)
    mkdirSync(join(consumer, "readme"), { recursive: true })
    snippets.forEach((code, i) => writeFileSync(join(consumer, "readme", `snippet${i + 1}.ts`), code))
    const strict = { target: "ES2022", strict: true, skipLibCheck: false, noEmit: true, types: ["node"] }
    const settings = { node16: { module: "node16", moduleResolution: "node16" }, bundler: { module: "esnext", moduleResolution: "bundler" } }
    const results = await Promise.all(
      Object.entries(settings).map(([name, resolution]) => {
        writeFileSync(join(consumer, `tsconfig.${name}.json`), JSON.stringify({ compilerOptions: { ...strict, ...resolution }, include: ["index.ts", "readme/*.ts"] }))
        return node([join(root, "node_modules", "typescript", "bin", "tsc"), "-p", `tsconfig.${name}.json`]).then((r) => ({ name, ...r }))
      })
    )
    for (const r of results) expect(`${r.name}: ${r.stdout}${r.stderr}`).toBe(`${r.name}: `)
  }, 240_000)

  it("runs the bin: its version and help without the optional peers; a command says which packages to install", async () => {
    const bin = join(installed, pkg.bin["pantheon-persistence"]!)
    expect(readFileSync(bin, "utf8").startsWith("#!/usr/bin/env node\n")).toBe(true)
    const version = await node([bin, "--version"])
    expect(version.stdout).toBe(`${pkg.version}\n`)
    const help = await node([bin, "--help"])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain(`pantheon-persistence ${pkg.version}`)
    const r = await node([bin, "sources", "--data-dir", "memory://"])
    expect(r.code).toBe(1)
    expect(r.stderr.trim()).toBe(
      "error: the command line needs @effect/cli, an optional peer dependency of pantheon-persistence that is not installed: " +
        `npm install @effect/cli@${optionalPeers["@effect/cli"]} @effect/platform-node@${optionalPeers["@effect/platform-node"]} cli-progress@${optionalPeers["cli-progress"]}`
    )
  }, 60_000)
})
