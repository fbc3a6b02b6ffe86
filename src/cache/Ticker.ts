/**
 * The time a cache reads, in milliseconds: the `Clock` of the fiber that built the cache.
 *
 * With Effect's live clock the time is read once per stretch of synchronous work (until the next
 * microtask checkpoint, and at most every `READS_PER_TICK` reads), not on every request: a clock
 * read costs 50-90 ns on the machines measured, a third of a hit (bench w4). Within one stretch
 * the time moves only by that stretch's own run time, which no TTL of the cache can observe
 * (Effect's fibers yield every 2,048 steps). Any other clock (`TestClock`) is read on every call,
 * since a test moves it in the middle of a stretch.
 */
import { Clock } from "effect"

export interface Ticker {
  now(): number
}

/** Reads within one stretch before the time is read again anyway (a long synchronous loop still sees time pass). */
const READS_PER_TICK = 1024

let cached = 0
let reads = READS_PER_TICK
const expire = () => {
  reads = READS_PER_TICK
}

/** The live clock, read once per stretch of synchronous work. */
const coarse: Ticker = {
  now: () => {
    if (reads++ < READS_PER_TICK) return cached
    if (reads === READS_PER_TICK + 1) queueMicrotask(expire)
    reads = 1
    cached = Date.now()
    return cached
  }
}

const LiveClock = Clock.make().constructor

export const tickerOf = (clock: Clock.Clock): Ticker =>
  clock.constructor === LiveClock ? coarse : { now: () => clock.unsafeCurrentTimeMillis() }
