/**
 * Ingesting a JSONL file into a source: every line is parsed and validated before anything is
 * written (what PostgreSQL would refuse is refused here, with its line), then the source is
 * registered and the entries inserted in one transaction, so a file is ingested whole or not at all.
 * An interruption (Ctrl-C, SIGTERM) rolls the transaction back and says so.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { SingleBar } from "cli-progress"
import { SqlError } from "@effect/sql/SqlError"
import { Console, Effect, Either, type Layer, Option, ParseResult, Schema } from "effect"
import { readFile } from "node:fs/promises"
import { eventLoopTurn } from "../concurrency.js"
import { timestampMs } from "../domain/compile.js"
import { errorReason, IngestError, StoreUnavailable } from "../domain/errors.js"
import { NewEntry } from "../domain/schemas.js"
import { validateSourceId } from "../stores/sql/identifiers.js"
import { lowSpace, PgliteClient } from "../stores/sql/PgliteClient.js"
import { SqlStore } from "../stores/sql/SqlStore.js"
import { showsProgress } from "./terminal.js"

export { IngestError }

/** What an interrupted ingest prints on stderr: the transaction was rolled back. */
export const INTERRUPTED = "interrupted: nothing was written"

const decodeEntry = Schema.decodeUnknownEither(NewEntry)

/**
 * In JSON text, a `\u0000` escape or an escaped lone surrogate (JSON.stringify escapes exactly
 * those, and writes paired surrogates as they are), not itself behind an escaped backslash.
 */
const UNSTORABLE_ESCAPE = /(?:^|[^\\])(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i
const NUL = /\u0000/
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

const whyUnstorable = (s: string): string | undefined =>
  NUL.test(s)
    ? "holds a NUL character (\\u0000), which PostgreSQL cannot store"
    : LONE_SURROGATE.test(s)
      ? "holds a lone surrogate (half of a UTF-16 pair), which is not Unicode text PostgreSQL can store"
      : undefined

/** The path of the first string (a key or a value, at any depth) PostgreSQL cannot store, and why. */
const findUnstorable = (value: unknown, path: string): string | undefined => {
  if (typeof value === "string") {
    const why = whyUnstorable(value)
    return why === undefined ? undefined : `${path}: ${why}`
  }
  if (value === null || typeof value !== "object") return undefined
  for (const [key, inner] of Object.entries(value)) {
    const why = whyUnstorable(key)
    if (why !== undefined) return `${path}: the key ${JSON.stringify(key)} ${why}`
    const found = findUnstorable(inner, `${path}.${key}`)
    if (found !== undefined) return found
  }
  return undefined
}

/**
 * Parses and validates every line; the first bad line is the error. Blank lines are skipped. Texts,
 * ids and metadata holding NUL characters or lone surrogates are refused (not replaced: the file is
 * the caller's to fix, and a silent change would store something else than was given), and so is an
 * id given twice in one file (naming both lines), so every line is one stored entry.
 */
export const parseJsonl = (text: string, file: string): Either.Either<Array<NewEntry>, IngestError> => {
  const entries: Array<NewEntry> = []
  const lineOfId = new Map<string, number>()
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line === "") continue
    const fail = (reason: string) => Either.left(new IngestError({ file, line: i + 1, reason }))
    let value: unknown
    try {
      value = JSON.parse(line)
    } catch (e) {
      return fail(`not valid JSON (${(e as Error).message})`)
    }
    const decoded = decodeEntry(value)
    if (Either.isLeft(decoded)) {
      const issue = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)[0]
      const field = issue?.path.join(".") || "entry"
      return fail(`${field}: ${issue?.message ?? "invalid"}`)
    }
    const entry = Schema.encodeSync(NewEntry)(decoded.right)
    let json: string
    try {
      json = JSON.stringify(entry)
    } catch (e) {
      return fail(`cannot be stored: ${(e as Error).message} (metadata nested too deeply?)`)
    }
    if (UNSTORABLE_ESCAPE.test(json)) {
      const found = (() => {
        try {
          return findUnstorable(entry, "entry")?.replace(/^entry\./, "")
        } catch {
          return undefined // nested deeper than a walk can go: the escape itself is the evidence
        }
      })()
      return fail(found ?? "holds a NUL character or a lone surrogate, which PostgreSQL cannot store")
    }
    if (timestampMs(entry.timestamp) === undefined) {
      return fail(`timestamp: ${JSON.stringify(entry.timestamp)} is not a date`)
    }
    const first = lineOfId.get(entry.id)
    if (first !== undefined) return fail(`id ${JSON.stringify(entry.id)} is also on line ${first} (an id may appear once in a file)`)
    lineOfId.set(entry.id, i + 1)
    entries.push(entry)
  }
  if (entries.length === 0) return Either.left(new IngestError({ file, reason: "holds no entries" }))
  return Either.right(entries)
}

export const readEntries = (file: string) =>
  Effect.tryPromise({
    try: () => readFile(file, "utf8"),
    catch: (e) => new IngestError({ file, reason: `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` })
  }).pipe(Effect.flatMap((text) => parseJsonl(text, file)))

/** What an ingest did: `entries` were stored, `replaced` of them over entries with the same id. */
export interface IngestResult {
  readonly registered: boolean
  readonly entries: number
  readonly replaced: number
}

/**
 * Ingests `entries` into `sourceId` (registered if new), all or nothing. Reports progress per
 * batch; an interruption between batches rolls everything back. `onCommitted` runs once the commit
 * is done, before any interruption can be seen (so a caller never says "nothing was written" after it).
 */
export const ingest = (
  sourceId: string,
  entries: ReadonlyArray<NewEntry>,
  onProgress: (done: number, total: number) => Effect.Effect<void> = () => Effect.void,
  onCommitted: () => void = () => {}
) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const store = yield* SqlStore
    return yield* Effect.uninterruptibleMask((restore) =>
      Effect.tap(sql.withTransaction(restore(Effect.gen(function* () {
        const known = (yield* store.catalog).some((d) => d.id === sourceId)
        if (!known) yield* store.registerSource(sourceId)
        const before = known ? yield* store.countEntries(sourceId) : 0
        const manager = yield* store.open(sourceId)
        for (let done = 0; done < entries.length; done += 50) {
          const batch = entries.slice(done, done + 50)
          yield* manager.insert(batch)
          yield* onProgress(done + batch.length, entries.length)
          yield* eventLoopTurn
        }
        const after = known ? yield* store.countEntries(sourceId) : entries.length
        return { registered: !known, entries: entries.length, replaced: entries.length - (after - before) } satisfies IngestResult
      }))), () => Effect.sync(onCommitted))
    ).pipe(
      // A rollback that fails dies (@effect/sql's withTransaction): the connection is lost or the disk
      // is full, and the server rolls back itself. Said in words, with the server's reason.
      Effect.catchSomeDefect((defect) =>
        defect instanceof SqlError
          ? Option.some(Effect.fail(new StoreUnavailable({ id: sourceId, reason: `the ingest was not committed: ${errorReason(defect)}`, cause: defect })))
          : Option.none()
      ),
      // On the embedded store, a write that failed on a full disk says so, with the directory and its free space.
      Effect.catchAll((e) =>
        Effect.flatMap(Effect.serviceOption(PgliteClient), (client) => {
          const space = Option.isSome(client) && !client.value.dataDir.includes("://") ? lowSpace(client.value.dataDir) : undefined
          return Effect.fail(space === undefined ? e : new StoreUnavailable({ id: sourceId, reason: `${e instanceof StoreUnavailable ? e.reason : errorReason(e)}; ${space}`, cause: e }))
        })
      )
    )
  }).pipe(Effect.withSpan("ingest", { attributes: { source: sourceId, entries: entries.length } }))

/**
 * Progress on a terminal (stderr): entries done, rate and time left, redrawn as batches land (at
 * most 5 times a second) and cleared at the end. Nothing when stderr is not a TTY or under `quiet`.
 */
export const progressBar = (source: string, options: { readonly quiet?: boolean } = {}) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      if (options.quiet || !showsProgress(process.stderr)) return undefined
      const bar = new SingleBar({
        stream: process.stderr,
        format: `  ${source} [{bar}] {value}/{total} entries | {rate} entries/s | {eta_formatted} left`,
        barsize: 24,
        fps: 5,
        etaBuffer: 40,
        clearOnComplete: true,
        hideCursor: true
      })
      return { bar, started: Date.now() }
    }),
    (state) => Effect.sync(() => state?.bar.stop())
  ).pipe(
    Effect.map((state) => (done: number, total: number) =>
      Effect.sync(() => {
        if (state === undefined) return
        const rate = Math.round(done / Math.max((Date.now() - state.started) / 1000, 0.001))
        if (state.bar.getTotal() !== total) state.bar.start(total, 0, { rate: 0 })
        state.bar.update(done, { rate })
      })
    )
  )

/**
 * The `ingest` command: checks the id and the whole file before the store opens (a bad file fails
 * fast and touches nothing), then ingests with progress and prints one line: what was stored, or
 * on an interruption before the commit, `interrupted: nothing was written` (on stderr).
 */
export const ingestFile = <E, R>(options: { readonly file: string; readonly source: string; readonly quiet: boolean }, store: Layer.Layer<SqlStore | SqlClient.SqlClient, E, R>) => {
  let committed = false
  return Effect.gen(function* () {
    yield* validateSourceId(options.source)
    const entries = yield* readEntries(options.file)
    const result = yield* Effect.scoped(
      Effect.flatMap(progressBar(options.source, options), (onProgress) => ingest(options.source, entries, onProgress, () => (committed = true)))
    ).pipe(Effect.provide(store))
    const replaced = result.replaced > 0 ? `; ${result.replaced} of them replaced entries with the same id` : ""
    yield* Console.log(`Ingested ${result.entries} entries into ${options.source}${result.registered ? " (new source)" : ""}${replaced}.`)
  }).pipe(Effect.onInterrupt(() => (committed ? Effect.void : Console.error(INTERRUPTED))))
}
