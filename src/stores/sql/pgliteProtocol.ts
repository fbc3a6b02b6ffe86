/**
 * The messages between `PgliteWorkerDatabase` (the main thread) and `pgliteWorker.ts` (the worker
 * thread that owns the PGlite instance), and how a failure crosses between them.
 *
 * - Requests carry an `id`; the worker answers each once, in the order it received them (PGlite has
 *   one connection: the statements run one after the other, as they would in-process).
 * - A failure travels as plain data (`EncodedFailure`): an `Error` keeps its name, message, stack
 *   and own fields (PostgreSQL's `code`, `detail`, `severity`, ...), a plain object (PGlite's file
 *   system errors, `{ errno }`) its own fields, so the main thread's messages read as they did when
 *   PGlite ran on it.
 */

export type Request =
  /**
   * `template`: a new cluster's files to start from instead of initdb (see `clusterTemplate.ts`);
   * `copy`: answer with a copy of the new cluster's files, taken before anything else runs on it.
   */
  | { readonly id: number; readonly op: "start"; readonly dataDir: string; readonly template?: Blob; readonly copy?: boolean }
  | { readonly id: number; readonly op: "query"; readonly sql: string; readonly params: ReadonlyArray<unknown>; readonly rowMode?: "array" }
  | { readonly id: number; readonly op: "exec"; readonly sql: string }
  | { readonly id: number; readonly op: "close" }

export type Reply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly failure: EncodedFailure }

export interface EncodedFailure {
  /** "error": rebuilt as an `Error`; "object": a plain object; "value": anything else, as text. */
  readonly kind: "error" | "object" | "value"
  readonly name?: string
  readonly message?: string
  readonly stack?: string
  readonly fields: Record<string, unknown>
  readonly cause?: EncodedFailure
}

const plainFields = (value: object): Record<string, unknown> => {
  const fields: Record<string, unknown> = {}
  for (const key of Object.keys(value)) {
    const field = (value as Record<string, unknown>)[key]
    if (field === null || ["string", "number", "boolean", "bigint", "undefined"].includes(typeof field)) fields[key] = field
  }
  return fields
}

/** A failure as data that survives `postMessage` (causes nested up to 4 deep). */
export const encodeFailure = (failure: unknown, depth = 0): EncodedFailure => {
  if (failure instanceof Error) {
    const cause = (failure as { cause?: unknown }).cause
    return {
      kind: "error",
      name: failure.name,
      message: failure.message,
      ...(failure.stack === undefined ? {} : { stack: failure.stack }),
      fields: plainFields(failure),
      ...(cause === undefined || depth >= 4 ? {} : { cause: encodeFailure(cause, depth + 1) })
    }
  }
  if (failure !== null && typeof failure === "object") return { kind: "object", fields: plainFields(failure) }
  return { kind: "value", message: String(failure), fields: {} }
}

/** The failure again, on the receiving side: an `Error` with its fields, a plain object, or text. */
export const decodeFailure = (encoded: EncodedFailure): unknown => {
  if (encoded.kind === "object") return { ...encoded.fields }
  if (encoded.kind === "value") return encoded.message
  const error = new Error(encoded.message ?? "", encoded.cause === undefined ? undefined : { cause: decodeFailure(encoded.cause) })
  Object.assign(error, encoded.fields)
  if (encoded.name !== undefined) error.name = encoded.name
  if (encoded.stack !== undefined) error.stack = encoded.stack
  return error
}
