/**
 * The state of one cache entry and its transitions, as pure functions of the state and the time:
 * no map, no policy, no fiber. An entry is exactly one of
 *
 * - `Loading`: its first load is running; nothing to serve until it ends.
 * - `Ready`: a value, fresh until `expiresAt` (then servable for `staleFor` more while reloading fails).
 * - `Refreshing`: a reload of a `Ready` value is running; the value is served while fresh.
 * - `Failed`: a failed load, remembered (and served as that failure) until `expiresAt`.
 *
 * A state is replaced, never mutated, on every transition, so a finishing load can tell whether its
 * entry is still the one it started for (`LoadingCache.ts`).
 */
import { Cause, Deferred, Effect, Exit, FiberId } from "effect"

export interface Ready<V> {
  readonly _tag: "Ready"
  readonly value: V
  /** `Effect.succeed(value)`, allocated once: a hit returns it as is. */
  readonly served: Effect.Effect<V>
  readonly loadedAt: number
  readonly expiresAt: number
  /** A hit from this time on starts a background reload. */
  readonly refreshAt: number
  /** After a failed reload: no new reload before this time. */
  readonly retryAt: number
}

export interface Loading<V, E> {
  readonly _tag: "Loading"
  readonly flight: Deferred.Deferred<V, E>
}

export interface Refreshing<V, E> {
  readonly _tag: "Refreshing"
  readonly current: Ready<V>
  readonly flight: Deferred.Deferred<V, E>
}

export interface Failed<E> {
  readonly _tag: "Failed"
  readonly failure: Effect.Effect<never, E>
  readonly expiresAt: number
}

export type State<V, E> = Ready<V> | Loading<V, E> | Refreshing<V, E> | Failed<E>
export type InFlight<V, E> = Loading<V, E> | Refreshing<V, E>

/** How an entry's times are derived from a load's result. */
export interface Timing {
  /** Past its TTL a value may be served this much longer while reloading it fails (ms). */
  readonly staleFor: number
  /** The share of the TTL after which a hit reloads in the background (1: never). */
  readonly refreshAhead: number
}

/** What a request finds in an entry's state at a time (`request`). */
export const Verdict = {
  /** A fresh value: a hit. */
  Hit: 0,
  /** A fresh value past its refresh-ahead time: a hit that starts a background reload. */
  HitAndRefresh: 1,
  /** Past its TTL but a reload failed lately: the stale value is served at once, no reload. */
  Stale: 2,
  /** Past its TTL, within stale-if-error: a miss that reloads, the stale value as fallback. */
  Reload: 3,
  /** A load is running and nothing fresh is held: a miss that waits (with the stale value as fallback when refreshing). */
  Wait: 4,
  /** A remembered failure: a miss that fails. */
  Fail: 5,
  /** A value past TTL and stale-if-error: expired; a miss that loads anew. */
  Expired: 6,
  /** A failure past its TTL: forgotten; a miss that loads anew. */
  Forgotten: 7
} as const
export type Verdict = (typeof Verdict)[keyof typeof Verdict]

/** The transition of a request: what serving it means for this state at `now`. */
export const request = <V, E>(state: State<V, E>, now: number, timing: Timing): Verdict => {
  switch (state._tag) {
    case "Ready":
      if (now < state.expiresAt) return now >= state.refreshAt && now >= state.retryAt ? Verdict.HitAndRefresh : Verdict.Hit
      if (now < state.expiresAt + timing.staleFor) return now < state.retryAt ? Verdict.Stale : Verdict.Reload
      return Verdict.Expired
    case "Refreshing":
      return now < state.current.expiresAt ? Verdict.Hit : Verdict.Wait
    case "Loading":
      return Verdict.Wait
    case "Failed":
      return now < state.expiresAt ? Verdict.Fail : Verdict.Forgotten
  }
}

/** The value the state holds, fresh or not (a `Refreshing` entry's current one). */
export const held = <V, E>(state: State<V, E>): Ready<V> | undefined =>
  state._tag === "Ready" ? state : state._tag === "Refreshing" ? state.current : undefined

/** The value the state can serve at `now` without a load, if any. */
export const servable = <V, E>(state: State<V, E>, now: number): Ready<V> | undefined => {
  const ready = held(state)
  return ready !== undefined && now < ready.expiresAt ? ready : undefined
}

/** Whether nothing in the state can be served any more, so the sweep may drop it (`expired`: a value's end, not a failure's). */
export const finished = <V, E>(state: State<V, E>, now: number, timing: Timing): "expired" | "forgotten" | undefined =>
  state._tag === "Ready" && now >= state.expiresAt + timing.staleFor
    ? "expired"
    : state._tag === "Failed" && now >= state.expiresAt
      ? "forgotten"
      : undefined

/** A load starting: the first one, or a reload of `previous` (served meanwhile). */
export const loading = <V, E>(previous: Ready<V> | undefined): InFlight<V, E> => {
  const flight = Deferred.unsafeMake<V, E>(FiberId.none)
  return previous === undefined ? { _tag: "Loading", flight } : { _tag: "Refreshing", current: previous, flight }
}

/** A value loaded (or set) at `now`, served for `ttl` ms. */
export const ready = <V>(value: V, now: number, ttl: number, timing: Timing): Ready<V> => ({
  _tag: "Ready",
  value,
  served: Effect.succeed(value),
  loadedAt: now,
  expiresAt: now + ttl,
  refreshAt: timing.refreshAhead >= 1 ? Infinity : now + ttl * timing.refreshAhead,
  retryAt: 0
})

/**
 * The transition of a load's end: the entry's next state, or `undefined` when it keeps nothing (a
 * TTL of 0, an interrupted first load). A failed reload keeps the good value and delays the next
 * try by the failure's TTL; an interrupted one keeps the value as it was.
 */
export const settled = <V, E>(state: InFlight<V, E>, exit: Exit.Exit<V, E>, now: number, ttl: number, timing: Timing): State<V, E> | undefined => {
  if (Exit.isSuccess(exit)) return ttl > 0 ? ready(exit.value, now, ttl, timing) : undefined
  const interrupted = Cause.isInterruptedOnly(exit.cause)
  if (state._tag === "Refreshing") return interrupted ? state.current : { ...state.current, retryAt: now + ttl }
  return !interrupted && ttl > 0 ? { _tag: "Failed", failure: Effect.failCause(exit.cause), expiresAt: now + ttl } : undefined
}
