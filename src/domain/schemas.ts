import { Schema } from "effect"

/**
 * A filter on metadata fields and the entry time: equality `{ type: "image", userId: "u1" }`, or
 * operators `{ age: { $gte: 18 }, $or: [...], $since: "2024-01-01" }`. Any object decodes here;
 * `parseFilter` (domain/filter.ts) says what it means and refuses what it cannot mean.
 */
export const Where = Schema.Record({ key: Schema.String, value: Schema.Unknown })
export type Where = typeof Where.Type

/** A named source of context; it matches the store manager whose `name === id`. */
export const ContextSource = Schema.Struct({
  id: Schema.String.pipe(Schema.minLength(1, { message: () => "must be a non-empty string" })),
  label: Schema.optional(Schema.String),
  where: Schema.optional(Where),
  metadata: Schema.optional(Schema.Unknown)
})
export type ContextSource = typeof ContextSource.Type

/** What `compile` takes. Limits that are not finite numbers above 0 fall back to their defaults. */
export const CompileRequest = Schema.Struct({
  texts: Schema.optional(Schema.Array(Schema.Unknown)),
  sources: Schema.Array(ContextSource),
  recentLimit: Schema.optional(Schema.Unknown),
  queryLimit: Schema.optional(Schema.Unknown),
  limit: Schema.optional(Schema.Unknown),
  maxTokens: Schema.optional(Schema.Unknown),
  onSourceError: Schema.optional(Schema.Literal("skip", "fail"))
})
export type CompileRequestInput = typeof CompileRequest.Encoded

/** A compile request after defaults: every field present and valid. */
export interface NormalizedRequest {
  readonly texts: ReadonlyArray<string>
  readonly sources: ReadonlyArray<ContextSource>
  readonly recentLimit: number
  readonly queryLimit: number
  readonly limit: number
  /** The token budget (undefined: the configured one, if any). */
  readonly maxTokens: number | undefined
  readonly onSourceError: "skip" | "fail"
}

export const Role = Schema.Literal("system", "user", "assistant")
export type Role = typeof Role.Type

/** One chat message of the compiled context. */
export const Message = Schema.Struct({
  role: Role,
  content: Schema.String,
  images: Schema.optional(Schema.Array(Schema.String))
})
export type Message = typeof Message.Type

/**
 * An entry as a store returns it. Stores are the caller's code, so nothing here is trusted:
 * `compile` validates each entry and skips bad ones.
 */
export interface StoreEntry {
  readonly id?: string | undefined
  readonly text: unknown
  readonly timestamp: unknown
  readonly metadata?: unknown
}

/** An entry to insert: what the SQL stores persist. */
export const NewEntry = Schema.Struct({
  id: Schema.String.pipe(Schema.minLength(1)),
  text: Schema.String,
  timestamp: Schema.Union(Schema.Number, Schema.DateFromSelf, Schema.String),
  metadata: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.Unknown }), { default: () => ({}) })
})
export type NewEntry = typeof NewEntry.Encoded

/**
 * One store manager in the catalog. `id` is the source id it serves (what `ContextSource.id`
 * matches); `key` tells apart several managers that serve one id (the reference queries each of
 * them), and defaults to `id`. `fingerprint` changes when the source is re-pointed or reconfigured.
 * Backends may add fields of their own (the SQL store: where the entries live).
 */
export interface StoreDescriptor {
  readonly id: string
  readonly key?: string
  readonly label?: string
  readonly fingerprint?: string
}

/** The key of a descriptor's manager in the manager cache. */
export const managerKey = (descriptor: StoreDescriptor): string => descriptor.key ?? descriptor.id
