/**
 * What happens to the stores, as one Schema union: every change travels as one of these, on one
 * service (`StoreEvents`), within an instance and, on a shared PostgreSQL database, between
 * instances (LISTEN/NOTIFY, decoded with this schema). Events carry ids and version numbers, never
 * labels or data, so a message stays far below NOTIFY's 8,000-byte limit.
 */
import { Schema } from "effect"

/** A source was registered (`fingerprint`: its catalog version). */
export const SourceAdded = Schema.TaggedStruct("SourceAdded", { id: Schema.String, fingerprint: Schema.optional(Schema.String) })
/** A source was re-registered or reconfigured: managers opened before are stale. */
export const SourceChanged = Schema.TaggedStruct("SourceChanged", { id: Schema.String, fingerprint: Schema.optional(Schema.String) })
/** A source left the catalog. */
export const SourceRemoved = Schema.TaggedStruct("SourceRemoved", { id: Schema.String })
/** A source's entries were written; `seq` is its new high-water sequence (0 when unknown). */
export const DataWritten = Schema.TaggedStruct("DataWritten", { id: Schema.String, seq: Schema.Number })
/** Drop the cached manager of a source (`id: null`: of every source). */
export const Invalidated = Schema.TaggedStruct("Invalidated", { id: Schema.NullOr(Schema.String) })
/** The channel to the other instances was lost and is back: anything may have been missed. */
export const Resync = Schema.TaggedStruct("Resync", {})

export const StoreEvent = Schema.Union(SourceAdded, SourceChanged, SourceRemoved, DataWritten, Invalidated, Resync)
export type StoreEvent = typeof StoreEvent.Type
