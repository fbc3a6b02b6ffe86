/**
 * The time a cache reads, in milliseconds: the `Clock` of the fiber that built the cache.
 */
import type { Clock } from "effect"

export interface Ticker {
  now(): number
}

export const tickerOf = (clock: Clock.Clock): Ticker => ({ now: () => clock.unsafeCurrentTimeMillis() })
