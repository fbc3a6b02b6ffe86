/**
 * The commands of the command line: the main job (ingest the sample on the first run, compile
 * twice, show the caches at work) and `sources`, `ingest`, `compile`, `stats`, `serve`. They run on
 * the store the environment names (`StoreLive`: PostgreSQL when PANTHEON_DATABASE_URL is set, else
 * the embedded store in --data-dir).
 */
import { Args, Command, Options } from "@effect/cli"
import { Console, Duration, Effect, Layer, Option } from "effect"
import { fileURLToPath } from "node:url"
import { dirname, join } from "node:path"
import { readdirSync } from "node:fs"
import { CliError, UsageError } from "../domain/errors.js"
import type { Message } from "../domain/schemas.js"
import { MetricsServer } from "../layers/MetricsServerLive.js"
import { StoreLive } from "../layers/StoreLive.js"
import { PgliteClient } from "../stores/sql/PgliteClient.js"
import { PersistenceAdapterLive } from "../layers/PersistenceAdapterLive.js"
import { ContextCompiler } from "../services/ContextCompiler.js"
import { Embedder } from "../embedding/Embedder.js"
import { bytesHeld, ManagerCache } from "../services/ManagerCache.js"
import { SlowSources } from "../services/SlowSources.js"
import { StoreManagerRegistry } from "../services/StoreManagerRegistry.js"
import { SqlStore } from "../stores/sql/SqlStore.js"
import { BIN, common, commands, options } from "./help.js"
import { ingest, ingestFile, progressBar, readEntries } from "./ingest.js"
import { quiet } from "./terminal.js"

export { CliError, UsageError }

/** A subcommand's one-line summary, from the help. */
const summary = (name: string) => commands.find((c) => c.name === name)!.summary

const SAMPLE_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "data", "sample")
const SAMPLE_QUESTION = "Why is checkout slow after the deploy, and who has to approve the database fix?"

const dataDirOption = Options.text("data-dir").pipe(Options.withDescription(common.dataDir.doc), Options.optional)
const lockTimeoutOption = Options.integer("lock-timeout").pipe(Options.withDescription(common.lockTimeout.doc), Options.withDefault(10))
/** Where the data lives and how long to wait for it: every command takes both. */
const dataDir = Options.all({ dir: dataDirOption, lockTimeout: lockTimeoutOption })

/** The services of the project over the store the environment names (PostgreSQL, else embedded). */
const app = (options: { readonly dir: Option.Option<string>; readonly lockTimeout: number }) =>
  PersistenceAdapterLive().pipe(
    Layer.provideMerge(
      StoreLive({
        ...(Option.isSome(options.dir) ? { dataDir: options.dir.value } : {}),
        lockTimeout: Duration.seconds(Math.max(0, options.lockTimeout))
      })
    )
  )

const describeStore = Effect.gen(function* () {
  const store = yield* SqlStore
  const embedder = yield* Embedder
  const embedded = Option.isSome(yield* Effect.serviceOption(PgliteClient))
  return `${embedded ? "embedded store (PGlite)" : "PostgreSQL store"}, ${store.vectorMode} vectors, ${embedder.model} embeddings`
})

const formatMessage = (m: Message) => {
  const images = m.images?.length ? `  [image: ${m.images.join(", ")}]` : ""
  return `[${m.role}] ${m.content}${images}`
}

const ingestSample = Effect.gen(function* () {
  const files = readdirSync(SAMPLE_DIR).filter((f) => f.endsWith(".jsonl")).sort()
  yield* Console.log(`First run: ingesting the sample corpus (${SAMPLE_DIR})`)
  for (const file of files) {
    const source = file.replace(/\.jsonl$/, "")
    const entries = yield* readEntries(join(SAMPLE_DIR, file))
    yield* Effect.scoped(Effect.flatMap(progressBar(source), (onProgress) => ingest(source, entries, onProgress)))
    yield* Console.log(`  ${source.padEnd(18)} ${entries.length} entries`)
  }
})

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.timed(effect), ([d, a]) => [a, Math.round(Duration.toMillis(d))] as const)

/** The main job: make sure there is data, compile twice, show what the caches did. */
const mainJob = Command.make(BIN, { dataDir }, ({ dataDir }) =>
  Effect.gen(function* () {
    const store = yield* SqlStore
    const embedder = yield* Embedder
    yield* Console.log(`pantheon-persistence: ${yield* describeStore}`)
    if ((yield* store.catalog).length === 0) yield* ingestSample
    else yield* Console.log("Using the stored data (run with --data-dir memory:// for a fresh store).")

    const sources = (yield* store.catalog).map((d) => ({ id: d.id }))
    const request = { texts: [SAMPLE_QUESTION], sources, limit: 6 }
    const compiler = yield* ContextCompiler
    const cache = yield* ManagerCache
    yield* Console.log(`\nQuestion: ${SAMPLE_QUESTION}\nSources:  ${sources.map((s) => s.id).join(", ")}\n`)

    const [messages, firstMs] = yield* timed(compiler.compile(request))
    yield* Console.log(`── compiled context: ${messages.length} messages in ${firstMs} ms (cold: catalog read, ${sources.length} managers opened) ──`)
    for (const m of messages) yield* Console.log(formatMessage(m))

    const before = yield* cache.stats
    const embedBefore = yield* embedder.stats
    const [again, secondMs] = yield* timed(compiler.compile(request))
    const after = yield* cache.stats
    const embedAfter = yield* embedder.stats
    yield* Console.log(`\n── compiled again: ${again.length} messages in ${secondMs} ms ──`)
    yield* Console.log(
      `Manager cache:   ${after.hits - before.hits} of ${sources.length} managers served from cache, ${after.loads - before.loads} loads ` +
        `(totals: hits ${after.hits}, misses ${after.misses}, loads ${after.loads}, hit rate ${(after.hitRate * 100).toFixed(1)} %, size ${after.size})`
    )
    yield* Console.log(
      `Embedding cache: ${embedAfter.embedded - embedBefore.embedded} texts embedded on the second compile ` +
        `(totals: hits ${embedAfter.hits}, misses ${embedAfter.misses}, ${embedAfter.entries} vectors, ${(embedAfter.bytes / 1024).toFixed(0)} KiB)`
    )
    const held = yield* cache.values
    const warm = held.filter((m) => m.weight !== undefined)
    yield* Console.log(
      `Warm managers:   ${warm.length} of ${held.length} sources answered from memory (${((yield* bytesHeld(cache)) / 1024).toFixed(0)} KiB of entries and vectors)`
    )
    yield* Console.log(`Same context both times: ${JSON.stringify(again) === JSON.stringify(messages) ? "yes" : "no"}`)
  }).pipe(Effect.provide(app(dataDir)))
)

const sourcesCommand = Command.make("sources", { dataDir }, ({ dataDir }) =>
  Effect.gen(function* () {
    const store = yield* SqlStore
    const catalog = yield* store.catalog
    if (catalog.length === 0) return yield* Console.log(`No sources yet: run \`${BIN}\` (it ingests the bundled sample) or \`${BIN} ingest <file.jsonl> --source <id>\`.`)
    for (const d of catalog) {
      const count = yield* store.countEntries(d.id)
      yield* Console.log(`${d.id.padEnd(20)} ${String(count).padStart(6)} entries${d.label ? `  (${d.label})` : ""}`)
    }
  }).pipe(Effect.provide(app(dataDir)))
).pipe(Command.withDescription(summary("sources")))

const ingestCommand = Command.make(
  "ingest",
  {
    dataDir,
    file: Args.text({ name: "file.jsonl" }).pipe(Args.withDescription(options.ingestFile.doc)),
    source: Options.text("source").pipe(Options.withDescription(options.ingestSource.doc))
  },
  // `--quiet` is a global flag (terminal.ts), taken off the command line before it is parsed.
  ({ dataDir, file, source }) => ingestFile({ file, source, quiet }, app(dataDir))
).pipe(Command.withDescription(summary("ingest")))

const compileCommand = Command.make(
  "compile",
  {
    dataDir,
    sources: Options.text("source").pipe(Options.atLeast(1), Options.withDescription(options.compileSource.doc)),
    texts: Options.text("text").pipe(Options.repeated, Options.withDescription(options.compileText.doc)),
    limit: Options.integer("limit").pipe(Options.withDescription(options.compileLimit.doc), Options.optional),
    maxTokens: Options.integer("max-tokens").pipe(Options.withDescription(options.compileMaxTokens.doc), Options.optional),
    json: Options.boolean("json").pipe(Options.withDescription(options.compileJson.doc))
  },
  ({ dataDir, sources, texts, limit, maxTokens, json }) =>
    Effect.gen(function* () {
      const registry = yield* StoreManagerRegistry
      const known = (yield* registry.catalog).descriptors.map((d) => d.id)
      const unknown = sources.filter((s) => !known.includes(s))
      if (unknown.length > 0) {
        return yield* new CliError({ message: `unknown source ${JSON.stringify(unknown[0])} (known: ${known.join(", ") || "none"})` })
      }
      if (Option.isSome(limit) && limit.value < 1) return yield* new UsageError({ message: `--limit must be at least 1 (got ${limit.value})` })
      if (Option.isSome(maxTokens) && maxTokens.value < 1) return yield* new UsageError({ message: `--max-tokens must be at least 1 (got ${maxTokens.value})` })
      const messages = yield* (yield* ContextCompiler).compile({
        sources: sources.map((id) => ({ id })),
        texts,
        ...(Option.isSome(limit) ? { limit: limit.value } : {}),
        ...(Option.isSome(maxTokens) ? { maxTokens: maxTokens.value } : {}),
        onSourceError: "fail"
      })
      yield* Console.log(json ? JSON.stringify(messages, null, 2) : messages.map(formatMessage).join("\n"))
    }).pipe(Effect.provide(app(dataDir)))
).pipe(Command.withDescription(summary("compile")))

const statsCommand = Command.make("stats", { dataDir }, ({ dataDir }) =>
  Effect.gen(function* () {
    const store = yield* SqlStore
    const embedder = yield* Embedder
    const catalog = yield* store.catalog
    let total = 0
    for (const d of catalog) total += yield* store.countEntries(d.id)
    // One compile of every source (the sample question): a source that does not answer within queryTimeout is listed.
    if (catalog.length > 0) yield* (yield* ContextCompiler).compile({ sources: catalog.map((d) => ({ id: d.id })), texts: [SAMPLE_QUESTION] })
    const slow = yield* (yield* SlowSources).report
    const cache = yield* (yield* ManagerCache).stats
    yield* Console.log(
      [
        `store:       ${yield* describeStore}`,
        `embedder:    ${embedder.model} (${embedder.dimensions} dimensions)`,
        `sources:     ${catalog.length}`,
        `entries:     ${total}`,
        `slow:        ${slow.length === 0 ? "none" : slow.map((s) => `${s.id} (${s.operations.join(" and ")} took longer than ${s.queryTimeout}, the queryTimeout)`).join("; ")}`,
        `manager cache (this process): ${JSON.stringify(cache)}`
      ].join("\n")
    )
  }).pipe(Effect.provide(app(dataDir)))
).pipe(Command.withDescription(summary("stats")))

const serveCommand = Command.make(
  "serve",
  { dataDir, port: Options.integer("metrics-port").pipe(Options.withDefault(9464), Options.withDescription(options.metricsPort.doc)) },
  ({ dataDir, port }) =>
    Effect.gen(function* () {
      if (port < 0 || port > 65535) return yield* new UsageError({ message: `--metrics-port must be between 0 and 65535 (got ${port})` })
      return yield* Effect.gen(function* () {
        const server = yield* MetricsServer
        const registry = yield* StoreManagerRegistry
        const sources = (yield* registry.catalog).descriptors.map((d) => ({ id: d.id }))
        // One compile, so the cache and compile metrics have something to show.
        if (sources.length > 0) yield* (yield* ContextCompiler).compile({ sources, texts: [SAMPLE_QUESTION] })
        yield* Console.log(`serving ${server.url}/metrics and ${server.url}/healthz (${yield* describeStore}); Ctrl-C stops`)
        return yield* Effect.never
      }).pipe(Effect.provide(MetricsServer.layer({ port }).pipe(Layer.provideMerge(app(dataDir)))))
    })
).pipe(Command.withDescription(summary("serve")))

/** The whole command line. */
export const command = mainJob.pipe(
  Command.withDescription(summary("")),
  Command.withSubcommands([sourcesCommand, ingestCommand, compileCommand, statsCommand, serveCommand])
)
