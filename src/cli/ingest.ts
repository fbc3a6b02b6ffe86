/**
 * Ingesting a JSONL file into a source: every line is parsed and validated before anything is
 * written, then the source is registered and the entries inserted in one transaction, so a file is
 * ingested whole or not at all.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Data, Effect, Either, ParseResult, Schema } from "effect"
import { readFile } from "node:fs/promises"
import { timestampMs } from "../domain/compile.js"
import { NewEntry } from "../domain/schemas.js"
import { SqlStore } from "../stores/sql/SqlStore.js"

export class IngestError extends Data.TaggedError("IngestError")<{ readonly file: string; readonly line?: number; readonly reason: string }> {
  override get message() {
    return `${this.file}${this.line === undefined ? "" : `:${this.line}`}: ${this.reason}`
  }
}

const decodeEntry = Schema.decodeUnknownEither(NewEntry)

/** Parses and validates every line; the first bad line is the error. Blank lines are skipped. */
export const parseJsonl = (text: string, file: string): Either.Either<Array<NewEntry>, IngestError> => {
  const entries: Array<NewEntry> = []
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line === "") continue
    let value: unknown
    try {
      value = JSON.parse(line)
    } catch (e) {
      return Either.left(new IngestError({ file, line: i + 1, reason: `not valid JSON (${(e as Error).message})` }))
    }
    const decoded = decodeEntry(value)
    if (Either.isLeft(decoded)) {
      const issue = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)[0]
      const field = issue?.path.join(".") || "entry"
      return Either.left(new IngestError({ file, line: i + 1, reason: `${field}: ${issue?.message ?? "invalid"}` }))
    }
    const entry = Schema.encodeSync(NewEntry)(decoded.right)
    try {
      JSON.stringify(entry)
    } catch (e) {
      return Either.left(new IngestError({ file, line: i + 1, reason: `cannot be stored: ${(e as Error).message} (metadata nested too deeply?)` }))
    }
    if (timestampMs(entry.timestamp) === undefined) {
      return Either.left(new IngestError({ file, line: i + 1, reason: `timestamp: ${JSON.stringify(entry.timestamp)} is not a date` }))
    }
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

/** Ingests `entries` into `sourceId` (registered if new), all or nothing. Reports progress per batch. */
export const ingest = (sourceId: string, entries: ReadonlyArray<NewEntry>, onProgress: (done: number, total: number) => Effect.Effect<void> = () => Effect.void) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const store = yield* SqlStore
    return yield* sql.withTransaction(
      Effect.gen(function* () {
        const known = (yield* store.catalog).some((d) => d.id === sourceId)
        if (!known) yield* store.registerSource(sourceId)
        const manager = yield* store.open(sourceId)
        for (let done = 0; done < entries.length; done += 50) {
          const batch = entries.slice(done, done + 50)
          yield* manager.insert(batch)
          yield* onProgress(done + batch.length, entries.length)
        }
        return { registered: !known, entries: entries.length }
      })
    )
  }).pipe(Effect.withSpan("ingest", { attributes: { source: sourceId, entries: entries.length } }))
