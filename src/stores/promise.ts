/**
 * The caller's Promise store managers (Pantheon's `DualStoreManager` shape), seen as `StoreManager`s:
 * each call becomes an effect whose rejection is a `StoreQueryError` naming the source and operation.
 */
import { Effect } from "effect"
import { StoreQueryError } from "../domain/errors.js"
import type { NewEntry, StoreEntry, Where } from "../domain/schemas.js"
import type { StoreManager } from "../services/StoreManager.js"

/** What `getStoreManagers()` resolves to: objects with a name and the two query methods. */
export interface DualStoreManagerLike {
  readonly name: string
  getMostRecent(limit?: number, where?: Record<string, unknown>): Promise<ReadonlyArray<PromiseEntry>>
  getMostRelevant(queries: ReadonlyArray<string>, limit: number, where?: Record<string, unknown>): Promise<ReadonlyArray<PromiseEntry>>
  insert?(entries: ReadonlyArray<unknown>): Promise<unknown>
  addEntry?(entry: unknown): Promise<unknown>
}

/** An entry as the caller's managers return it (nothing in it is trusted: compile checks each one). */
export interface PromiseEntry {
  readonly id?: string
  readonly text: string
  readonly timestamp: number | string | Date
  readonly metadata?: Record<string, unknown>
}

/** True for objects that have a string name and both query methods; others are skipped. */
export const isDualStoreManagerLike = (value: unknown): value is DualStoreManagerLike =>
  value !== null &&
  typeof value === "object" &&
  typeof (value as DualStoreManagerLike).name === "string" &&
  typeof (value as DualStoreManagerLike).getMostRecent === "function" &&
  typeof (value as DualStoreManagerLike).getMostRelevant === "function"

const call = <A>(id: string, operation: string, f: () => Promise<A>): Effect.Effect<A, StoreQueryError> =>
  Effect.tryPromise({
    try: f,
    catch: StoreQueryError.failed(id, operation)
  })

/**
 * The entry, or null when reading what compile reads of it throws (a getter, a Proxy): null is a
 * bad entry that compile skips and counts, where the throw would have failed the whole compile.
 */
const readable = (entry: unknown): unknown => {
  if (entry === null || typeof entry !== "object") return entry
  try {
    const { text, timestamp, metadata } = entry as Record<string, unknown>
    void text, void timestamp
    if (metadata !== null && typeof metadata === "object") for (const key of Object.keys(metadata)) void (metadata as Record<string, unknown>)[key]
    return entry
  } catch {
    return null
  }
}

const asEntries = (id: string, operation: string) => (value: unknown) =>
  Array.isArray(value)
    ? Effect.succeed(value.map(readable) as ReadonlyArray<StoreEntry>)
    : Effect.fail(new StoreQueryError({ id, operation, reason: `resolved to ${value === null ? "null" : typeof value}, expected an array of entries` }))

export const fromPromiseManager = (manager: DualStoreManagerLike): StoreManager => {
  const id = manager.name
  return {
    name: id,
    getMostRecent: (limit: number, where?: Where) =>
      Effect.flatMap(call(id, "getMostRecent", () => manager.getMostRecent(limit, where)), asEntries(id, "getMostRecent")),
    getMostRelevant: (queries, limit, where?: Where) =>
      Effect.flatMap(call(id, "getMostRelevant", () => manager.getMostRelevant(queries, limit, where)), asEntries(id, "getMostRelevant")),
    insert: (entries: ReadonlyArray<NewEntry>) => {
      if (typeof manager.insert === "function") return Effect.asVoid(call(id, "insert", () => manager.insert!(entries)))
      if (typeof manager.addEntry === "function") {
        return Effect.forEach(entries, (e) => call(id, "insert", () => manager.addEntry!(e)), { discard: true })
      }
      return Effect.fail(new StoreQueryError({ id, operation: "insert", reason: "this store manager has no insert or addEntry method" }))
    }
  }
}
