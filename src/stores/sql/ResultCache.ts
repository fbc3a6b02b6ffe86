/**
 * Query results of the SQL stores: the cache engine keyed by source, data version and query,
 * weighed in bytes. A `DataWritten`, `SourceChanged` or `SourceRemoved` event bumps the source's
 * data version, which retires its results at once (here and, through the events, on every
 * instance); a query that started before a write stores its result under the old version, so it is
 * never served after the write. `ttl` bounds how long a result lives in any case: writes made
 * behind the library's back are seen after at most `ttl`.
 */
import { Duration, Effect, Exit } from "effect"
import * as LoadingCache from "../../cache/LoadingCache.js"
import type { StoreQueryError } from "../../domain/errors.js"
import type { StoreEntry } from "../../domain/schemas.js"
import { StoreEvents } from "../../services/StoreEvents.js"

export interface ResultCacheOptions {
  /** Bytes the results may hold (default 16 MiB). */
  readonly maxBytes?: number
  /** Longest a result is served (default 60 s). */
  readonly ttl?: Duration.DurationInput
}

export type ResultCacheShape = Effect.Effect.Success<ReturnType<typeof make>>

/** An estimate of what a result set holds in memory: its strings (UTF-16) and object overheads. */
const resultBytes = (_key: string, rows: ReadonlyArray<StoreEntry>) => {
  let bytes = 64
  for (const row of rows) bytes += 96 + (typeof row.text === "string" ? row.text.length * 2 : 0) + (row.id?.length ?? 0) * 2 + JSON.stringify(row.metadata ?? null).length * 2
  return bytes
}

export const make = (options: ResultCacheOptions = {}) =>
  Effect.gen(function* () {
    const events = yield* StoreEvents
    const versions = new Map<string, number>()
    const ttl = Duration.decode(options.ttl ?? "60 seconds")
    const cache = yield* LoadingCache.makeWith<string, ReadonlyArray<StoreEntry>, StoreQueryError>({
      capacity: Infinity,
      lookup: (key) => Effect.dieMessage(`result cache: ${key} was asked for without its query`),
      timeToLive: Exit.match({ onFailure: () => 0, onSuccess: () => ttl }),
      weigher: resultBytes,
      maxWeight: options.maxBytes ?? 16 * 1024 * 1024,
      label: "results"
    })
    const version = (id: string) => versions.get(id) ?? 0
    const retire = (id: string) => void versions.set(id, version(id) + 1)
    yield* events.subscribe((event) =>
      Effect.sync(() => {
        switch (event._tag) {
          case "DataWritten":
          case "SourceChanged":
          case "SourceRemoved":
            return retire(event.id)
          case "Resync":
            for (const id of versions.keys()) retire(id)
            return
        }
      }).pipe(Effect.zipRight(event._tag === "Resync" ? cache.invalidateAll : Effect.void))
    )
    return {
      /** The result of `run` for this source and query key, computed once per data version. */
      query: (id: string, key: string, run: Effect.Effect<ReadonlyArray<StoreEntry>, StoreQueryError>) =>
        Effect.suspend(() => cache.getWith(`${id}\u0000${version(id)}\u0000${key}`, () => run)),
      stats: cache.stats
    }
  })
