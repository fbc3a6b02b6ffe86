/**
 * SlowSources: the sources whose queries pass `queryTimeout`, so that a source that can never answer
 * in time is reported instead of being silently reduced to what it answered (its recent entries,
 * or nothing). The compiler tells it, for each source of a compile, whether one of its queries
 * was late or all answered in time.
 *
 * - Every late query counts in `pantheon_source_timeouts_total{source}`.
 * - A source's streak is its run of compiles with a late query. Its first late compile logs one
 *   warning naming the source; the compiles after it in the same streak log nothing; the first
 *   compile in which it answers in time ends the streak (one info line).
 * - `report` lists the sources in a streak (for `/healthz` and `stats`), most late queries first.
 *
 * Per process: another instance keeps its own record.
 */
import { Clock, Context, Duration, Effect, Layer, Metric } from "effect"
import * as M from "../metrics.js"
import { CacheSettings } from "./CacheSettings.js"

/** A source in a streak of late answers. */
export interface SlowSource {
  readonly id: string
  /** The operations that were late (getMostRecent, getMostRelevant), in the order first seen. */
  readonly operations: ReadonlyArray<string>
  /** Compiles of the streak: each had at least one late query of this source. */
  readonly compiles: number
  /** Late queries of the streak. */
  readonly timeouts: number
  /** When the streak began and when its latest late query was (ISO 8601). */
  readonly since: string
  readonly last: string
  /** The deadline they passed (`queryTimeout`), as Effect formats a duration. */
  readonly queryTimeout: string
}

export interface SlowSourcesShape {
  /** One compile's late queries of a source (`operations`, one per late query). */
  readonly late: (id: string, operations: ReadonlyArray<string>) => Effect.Effect<void>
  /** A compile in which every query of the source answered in time: its streak, if any, ends. */
  readonly answered: (id: string) => Effect.Effect<void>
  /** The sources in a streak now. */
  readonly report: Effect.Effect<ReadonlyArray<SlowSource>>
}

interface Streak {
  readonly operations: Set<string>
  compiles: number
  timeouts: number
  readonly since: number
  last: number
}

export const make = Effect.gen(function* () {
  const { queryTimeout } = yield* CacheSettings
  const deadline = Duration.format(queryTimeout)
  const streaks = new Map<string, Streak>()

  const late = (id: string, operations: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      if (operations.length === 0) return
      const now = yield* Clock.currentTimeMillis
      yield* Metric.incrementBy(Metric.tagged(M.sourceTimeouts, "source", id), operations.length)
      const streak = streaks.get(id)
      if (streak !== undefined) {
        streak.compiles++
        streak.timeouts += operations.length
        streak.last = now
        for (const op of operations) streak.operations.add(op)
        return
      }
      streaks.set(id, { operations: new Set(operations), compiles: 1, timeouts: operations.length, since: now, last: now })
      yield* Metric.set(M.slowSources, streaks.size)
      yield* Effect.logWarning(
        `source ${id}: ${[...new Set(operations)].join(" and ")} did not answer within ${deadline} (queryTimeout); ` +
          `compiles use only what it answered in time until it does (reported once per streak: /healthz and stats list it, metric pantheon_source_timeouts_total)`
      )
    })

  const answered = (id: string) =>
    Effect.suspend(() => {
      const streak = streaks.get(id)
      if (streak === undefined) return Effect.void
      streaks.delete(id)
      return Effect.zipRight(
        Metric.set(M.slowSources, streaks.size),
        Effect.logInfo(`source ${id}: answers within ${deadline} (queryTimeout) again, after ${streak.compiles} compiles with ${streak.timeouts} late queries`)
      )
    })

  const report = Effect.sync(() =>
    [...streaks]
      .map(([id, s]): SlowSource => ({
        id,
        operations: [...s.operations],
        compiles: s.compiles,
        timeouts: s.timeouts,
        since: new Date(s.since).toISOString(),
        last: new Date(s.last).toISOString(),
        queryTimeout: deadline
      }))
      .sort((a, b) => b.timeouts - a.timeouts || a.id.localeCompare(b.id))
  )

  return { late, answered, report } satisfies SlowSourcesShape
})

export class SlowSources extends Context.Tag("pantheon-persistence/SlowSources")<SlowSources, SlowSourcesShape>() {
  static readonly layer: Layer.Layer<SlowSources, never, CacheSettings> = Layer.effect(SlowSources, make)
}
