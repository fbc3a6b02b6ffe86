import { Data } from "effect"

/** A configuration value was refused when a layer or adapter was built. */
export class InvalidConfig extends Data.TaggedError("InvalidConfig")<{
  readonly field: string
  readonly value: unknown
  readonly reason: string
  /** The environment variable the value came from, when it came from one. */
  readonly env?: string
  /** The value is a secret (a database URL with its password): the message does not repeat it. */
  readonly secret?: boolean
}> {
  override get message() {
    const got = this.secret ? "" : ` (got ${show(this.value)})`
    return `Invalid configuration: ${this.env === undefined ? "" : `${this.env}: `}${this.field} ${this.reason}${got}`
  }
}

/** The compile request does not have the shape `compile` accepts. */
export class InvalidCompileRequest extends Data.TaggedError("InvalidCompileRequest")<{
  readonly field: string
  readonly value: unknown
  readonly reason: string
}> {
  override get message() {
    return `Invalid compile request: ${this.field} ${this.reason} (got ${show(this.value)})`
  }
}

/** A source id (or another name used in storage) that is not a safe identifier. */
export class InvalidSourceId extends Data.TaggedError("InvalidSourceId")<{
  readonly id: unknown
  readonly reason: string
}> {
  override get message() {
    return `Invalid source id ${show(this.id)}: ${this.reason}`
  }
}

/** The catalog lists no source with this id. */
export class StoreNotFound extends Data.TaggedError("StoreNotFound")<{
  readonly id: string
}> {
  override get message() {
    return `No store source with id ${JSON.stringify(this.id)} is in the catalog`
  }
}

/** The catalog (the list of sources) could not be read, or was malformed. */
export class CatalogUnavailable extends Data.TaggedError("CatalogUnavailable")<{
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `Store catalog unavailable: ${this.reason}`
  }

  /** The catalog is unavailable because `doing` (e.g. "reading pantheon_sources") failed with a cause. */
  static failed(doing: string): (cause: unknown) => CatalogUnavailable {
    return (cause) => new CatalogUnavailable({ reason: `${doing} failed: ${errorReason(cause)}`, cause })
  }
}

/** Opening the store manager of a source failed (the store is down, or timed out). */
export class StoreUnavailable extends Data.TaggedError("StoreUnavailable")<{
  readonly id: string
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `Store ${JSON.stringify(this.id)} unavailable: ${this.reason}`
  }

  /** Source `id` is unavailable because `doing` (e.g. "reading its entries") failed with a cause. */
  static failed(id: string, doing: string): (cause: unknown) => StoreUnavailable {
    return (cause) => new StoreUnavailable({ id, reason: `${doing} failed: ${errorReason(cause)}`, cause })
  }
}

/** A query or write on an open store manager failed. */
export class StoreQueryError extends Data.TaggedError("StoreQueryError")<{
  readonly id: string
  readonly operation: string
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `Store ${JSON.stringify(this.id)}: ${this.operation} failed: ${this.reason}`
  }

  /** `operation` on source `id` failed with a cause (the reason is the cause's message). */
  static failed(id: string, operation: string): (cause: unknown) => StoreQueryError {
    return (cause) => new StoreQueryError({ id, operation, reason: errorReason(cause), cause })
  }
}

/** With `onSourceError: "fail"`, a source whose manager could not be loaded or queried. */
export class SourceFailed extends Data.TaggedError("SourceFailed")<{
  readonly sourceId: string
  readonly cause: LoadError | StoreQueryError
}> {
  override get message() {
    return `Source ${JSON.stringify(this.sourceId)} failed: ${this.cause.message}`
  }
}

/** Why a store manager could not be had. */
export type LoadError = StoreNotFound | StoreUnavailable | CatalogUnavailable | InvalidSourceId

/** Why a compile failed. */
export type CompileError = InvalidCompileRequest | CatalogUnavailable | SourceFailed | UnexpectedError

/** Short, bounded rendering of a user value for error messages. */
export const show = (value: unknown): string => {
  let text: string
  if (typeof value === "string") text = JSON.stringify(value)
  else if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") text = String(value)
  else if (value === undefined) text = "undefined"
  else if (typeof value === "function") text = "a function"
  else {
    try {
      text = JSON.stringify(value) ?? String(value)
    } catch {
      text = Object.prototype.toString.call(value)
    }
  }
  return text.length > 120 ? `${text.slice(0, 117)}...` : text
}

/**
 * A cause as one line for a message: the project's one rendering of an error. A wrapper's own
 * message often hides the useful part (an `SqlError` says "Failed to execute statement", a transport
 * error "fetch failed"): the messages of what it wraps, down its chain of causes, are appended
 * where they say something new. A file-system error with no message (PGlite's) is named by its errno.
 */
export const errorReason = (cause: unknown): string => {
  if (typeof cause === "string") return cause
  if (cause === null || typeof cause !== "object") return show(cause)
  if (!("message" in cause)) {
    const errno = (cause as { errno?: unknown }).errno
    return typeof errno === "number" ? `a file-system error (errno ${errno})` : show(cause)
  }
  let reason = String(cause.message)
  let inner: unknown = "cause" in cause ? cause.cause : undefined
  for (let depth = 0; depth < MAX_CAUSES && inner !== null && typeof inner === "object" && inner !== cause; depth++) {
    const detail = "message" in inner ? String(inner.message) : ""
    if (detail !== "" && !reason.includes(detail)) reason = `${reason}: ${detail}`
    inner = "cause" in inner ? inner.cause : undefined
  }
  return reason
}

/** How far down a chain of causes `errorReason` reads. */
const MAX_CAUSES = 4

/** Texts could not be embedded (the embedding service is down or answered nonsense). */
export class EmbedError extends Data.TaggedError("EmbedError")<{
  readonly model: string
  readonly reason: string
  /** The HTTP status the embedding server answered with, when it answered with an error. */
  readonly status?: number
  readonly cause?: unknown
}> {
  override get message() {
    return `Embedding with ${this.model} failed: ${this.reason}`
  }
}

/** A metadata filter that cannot be applied (a value that is not a string, number, boolean or null). */
export class InvalidFilter extends Data.TaggedError("InvalidFilter")<{
  readonly field: string
  readonly value: unknown
  readonly reason: string
}> {
  override get message() {
    return `Invalid filter on ${JSON.stringify(this.field)}: ${this.reason} (got ${show(this.value)})`
  }
}

/** The Promise adapter was disposed: it runs nothing more. */
export class AdapterDisposed extends Data.TaggedError("AdapterDisposed")<{}> {
  override get message() {
    return "pantheon-persistence: this adapter has been disposed"
  }
}

/** A failure nobody expected (a defect, a bug): kept whole in `cause`, so it is never lost. */
export class UnexpectedError extends Data.TaggedError("UnexpectedError")<{
  readonly operation: string
  readonly cause: unknown
}> {
  override get message() {
    return `${this.operation} failed unexpectedly: ${errorReason(this.cause)}`
  }
}

/** A feature needs an optional peer dependency that is not installed (the command line, the metrics endpoint). */
export class MissingPackage extends Data.TaggedError("MissingPackage")<{
  /** What needed it, e.g. "the metrics endpoint". */
  readonly feature: string
  /** The package that could not be found. */
  readonly missing: string
  /** What to install: `name@range` of every optional peer the feature uses. */
  readonly install: ReadonlyArray<string>
}> {
  override get message() {
    return `${this.feature} needs ${this.missing}, an optional peer dependency of pantheon-persistence that is not installed: npm install ${this.install.join(" ")}`
  }
}

/** The data directory could not be used: another process holds it, or it cannot be created. */
export class DataDirUnavailable extends Data.TaggedError("DataDirUnavailable")<{
  readonly dataDir: string
  readonly reason: string
  /** The process that holds the directory, when that is why. */
  readonly pid?: number
}> {
  override get message() {
    return `The data directory ${this.dataDir} ${this.reason}`
  }
}

/** A SQL store's layout is newer than this library reads: written by a later version of it. */
export class UnsupportedLayout extends Data.TaggedError("UnsupportedLayout")<{
  /** The layout the store records. */
  readonly layout: number
  /** The newest layout this library reads. */
  readonly supported: number
}> {
  override get message() {
    return `this store has layout ${this.layout}, newer than this library's ${this.supported}: upgrade pantheon-persistence`
  }
}

/** An entry in a store that cannot be read as written (a vector of the wrong size): the store is damaged. */
export class DamagedEntry extends Data.TaggedError("DamagedEntry")<{
  /** The entry's id. */
  readonly entry: string
  readonly reason: string
}> {
  override get message() {
    return `entry ${JSON.stringify(this.entry)} ${this.reason}`
  }
}

/** The listener for the other instances' changes (LISTEN on a PostgreSQL channel) could not be started. */
export class ListenerUnavailable extends Data.TaggedError("ListenerUnavailable")<{
  readonly channel: string
  readonly reason: string
}> {
  override get message() {
    return `the change listener could not LISTEN on ${this.channel}: ${this.reason}`
  }
}

/** A file the command line ingests is not what it takes (`file:line: reason`). */
export class IngestError extends Data.TaggedError("IngestError")<{ readonly file: string; readonly line?: number; readonly reason: string }> {
  override get message() {
    return `${this.file}${this.line === undefined ? "" : `:${this.line}`}: ${this.reason}`
  }
}

/** A command-line failure found after parsing, such as an unknown source (exit code 1). */
export class CliError extends Data.TaggedError("CliError")<{ readonly message: string }> {}

/** A command-line argument the parser accepted but the command cannot (a limit below 1): a usage error (exit code 2). */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}
