/**
 * An entry's states and transitions on their own: pure functions of a state and a time, no cache.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, FiberId } from "effect"
import * as EntryState from "../../src/cache/EntryState.js"

const timing = { staleFor: 0, refreshAhead: 1 }
const { Verdict } = EntryState

describe("a request's verdict", () => {
  it("a fresh value is a hit until its TTL, then expired", () => {
    const ready = EntryState.ready("v", 1000, 500, timing)
    expect(EntryState.request(ready, 1000, timing)).toBe(Verdict.Hit)
    expect(EntryState.request(ready, 1499, timing)).toBe(Verdict.Hit)
    expect(EntryState.request(ready, 1500, timing)).toBe(Verdict.Expired)
  })

  it("past the refresh-ahead share of the TTL a hit also reloads, unless a reload failed lately", () => {
    const ahead = { staleFor: 0, refreshAhead: 0.5 }
    const ready = EntryState.ready("v", 0, 1000, ahead)
    expect(EntryState.request(ready, 499, ahead)).toBe(Verdict.Hit)
    expect(EntryState.request(ready, 500, ahead)).toBe(Verdict.HitAndRefresh)
    expect(EntryState.request({ ...ready, retryAt: 700 }, 600, ahead)).toBe(Verdict.Hit)
  })

  it("within stale-if-error an expired value reloads, or is served at once while the last reload's failure is remembered", () => {
    const stale = { staleFor: 300, refreshAhead: 1 }
    const ready = EntryState.ready("v", 0, 1000, stale)
    expect(EntryState.request(ready, 1000, stale)).toBe(Verdict.Reload)
    expect(EntryState.request({ ...ready, retryAt: 1200 }, 1100, stale)).toBe(Verdict.Stale)
    expect(EntryState.request(ready, 1300, stale)).toBe(Verdict.Expired)
  })

  it("a load in flight is waited for; a refreshing value is served while fresh", () => {
    const loading = EntryState.loading<string, string>(undefined)
    expect(EntryState.request(loading, 0, timing)).toBe(Verdict.Wait)
    const refreshing = EntryState.loading<string, string>(EntryState.ready("v", 0, 1000, timing))
    expect(refreshing._tag).toBe("Refreshing")
    expect(EntryState.request(refreshing, 999, timing)).toBe(Verdict.Hit)
    expect(EntryState.request(refreshing, 1000, timing)).toBe(Verdict.Wait)
  })

  it("a failure is served until its TTL, then forgotten", () => {
    const failed: EntryState.Failed<string> = { _tag: "Failed", failure: Effect.fail("no"), expiresAt: 100 }
    expect(EntryState.request(failed, 99, timing)).toBe(Verdict.Fail)
    expect(EntryState.request(failed, 100, timing)).toBe(Verdict.Forgotten)
  })
})

describe("what a state holds and can serve", () => {
  it("held is the value whatever its age; servable only while fresh", () => {
    const ready = EntryState.ready("v", 0, 1000, timing)
    const refreshing = EntryState.loading<string, never>(ready)
    expect(EntryState.held(refreshing)).toBe(ready)
    expect(EntryState.servable(refreshing, 999)).toBe(ready)
    expect(EntryState.servable(refreshing, 1000)).toBeUndefined()
    expect(EntryState.held(EntryState.loading<string, never>(undefined))).toBeUndefined()
  })

  it("the sweep may drop a value past stale-if-error and a failure past its TTL, nothing else", () => {
    const stale = { staleFor: 300, refreshAhead: 1 }
    const ready = EntryState.ready("v", 0, 1000, stale)
    expect(EntryState.finished(ready, 1299, stale)).toBeUndefined()
    expect(EntryState.finished(ready, 1300, stale)).toBe("expired")
    expect(EntryState.finished({ _tag: "Failed", failure: Effect.fail("no"), expiresAt: 5 }, 5, stale)).toBe("forgotten")
    expect(EntryState.finished(EntryState.loading(undefined), 1e9, stale)).toBeUndefined()
  })
})

describe("a load's end", () => {
  it("a value becomes Ready for its TTL; a TTL of 0 keeps nothing", () => {
    const loading = EntryState.loading<string, string>(undefined)
    const next = EntryState.settled(loading, Exit.succeed("v"), 10, 100, timing)
    expect(next).toMatchObject({ _tag: "Ready", value: "v", loadedAt: 10, expiresAt: 110, refreshAt: Infinity })
    expect(EntryState.settled(loading, Exit.succeed("v"), 10, 0, timing)).toBeUndefined()
  })

  it("a failed first load is remembered for the failure's TTL; an interrupted one leaves nothing", () => {
    const loading = EntryState.loading<string, string>(undefined)
    expect(EntryState.settled(loading, Exit.fail("no"), 10, 50, timing)).toMatchObject({ _tag: "Failed", expiresAt: 60 })
    expect(EntryState.settled(loading, Exit.failCause(Cause.interrupt(FiberId.none)), 10, 50, timing)).toBeUndefined()
  })

  it("a failed reload keeps the good value and delays the next try; an interrupted one keeps it as it was", () => {
    const ready = EntryState.ready("v", 0, 1000, timing)
    const refreshing = EntryState.loading<string, string>(ready)
    expect(EntryState.settled(refreshing, Exit.fail("no"), 500, 200, timing)).toEqual({ ...ready, retryAt: 700 })
    expect(EntryState.settled(refreshing, Exit.interrupt(FiberId.none), 500, 200, timing)).toBe(ready)
  })
})
