/**
 * Test doubles for the caller's side only: store managers with canned entries and a lookup that
 * counts its calls and can be held back or made to fail. The code under test is always real.
 */
import { Deferred, Effect } from "effect"
import type { LoadError } from "../../src/domain/errors.js"
import { StoreUnavailable } from "../../src/domain/errors.js"
import type { StoreEntry, Where } from "../../src/domain/schemas.js"
import type { StoreManager } from "../../src/services/StoreManager.js"
import { matcherOf } from "../../src/domain/compile.js"

export interface CannedManager extends StoreManager {
  readonly version: number
  readonly calls: { recent: number; relevant: Array<{ queries: ReadonlyArray<string>; limit: number; where?: Where | undefined }> }
}

/** A manager whose recent query returns `recent` (newest first) and whose relevance query returns `relevant`. */
export const cannedManager = (
  name: string,
  options: { recent?: ReadonlyArray<StoreEntry>; relevant?: ReadonlyArray<StoreEntry>; version?: number; honoursWhere?: boolean } = {}
): CannedManager => {
  const calls: CannedManager["calls"] = { recent: 0, relevant: [] }
  const filter = (entries: ReadonlyArray<StoreEntry>, limit: number, where?: Where) =>
    (options.honoursWhere ? entries.filter(matcherOf(where)) : entries).slice(0, limit)
  return {
    name,
    version: options.version ?? 1,
    calls,
    getMostRecent: (limit, where) =>
      Effect.sync(() => {
        calls.recent++
        return filter(options.recent ?? [], limit, where)
      }),
    getMostRelevant: (queries, limit, where) =>
      Effect.sync(() => {
        calls.relevant.push({ queries, limit, where })
        return filter(options.relevant ?? [], limit, where)
      }),
    insert: () => Effect.void
  }
}

/**
 * A lookup that counts loads per key and answers `value(key, version)` (the version counts every
 * answer); `fail` makes the next loads fail with `error(key)`; `hold` makes them wait for `release`.
 */
export const countingLookup = <A, E>(answer: { readonly value: (key: string, version: number) => A; readonly error: (key: string) => E }) =>
  Effect.gen(function* () {
    const loads = new Map<string, number>()
    const state = { failing: false, gate: undefined as Deferred.Deferred<void> | undefined, version: 0 }
    const lookup = (key: string): Effect.Effect<A, E> =>
      Effect.gen(function* () {
        loads.set(key, (loads.get(key) ?? 0) + 1)
        if (state.gate) yield* Deferred.await(state.gate)
        if (state.failing) return yield* Effect.fail(answer.error(key))
        return answer.value(key, ++state.version)
      })
    return {
      lookup,
      loads,
      total: () => [...loads.values()].reduce((a, b) => a + b, 0),
      fail: (failing: boolean) => Effect.sync(() => void (state.failing = failing)),
      hold: Effect.map(Deferred.make<void>(), (gate) => void (state.gate = gate)),
      release: Effect.suspend(() => {
        const gate = state.gate
        state.gate = undefined
        return gate ? Deferred.succeed(gate, undefined) : Effect.void
      })
    }
  })

/** The manager cache's lookup: canned managers, `StoreUnavailable` when failing. */
export const makeLookup = countingLookup<StoreManager, LoadError>({
  value: (id, version) => cannedManager(id, { version }),
  error: (id) => new StoreUnavailable({ id, reason: "the test made it fail" })
})

export const at = (iso: string) => Date.parse(iso)

export const entry = (text: string, iso: string, metadata: Record<string, unknown> = {}): StoreEntry => ({ text, timestamp: at(iso), metadata })
