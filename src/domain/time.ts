/** Entry times: what a timestamp (or a filter's time bound) may be, as epoch milliseconds. */

/** Epoch milliseconds of a timestamp (number, Date or date string), or undefined when it has none. */
export const timestampMs = (timestamp: unknown): number | undefined => {
  let ms: number
  if (typeof timestamp === "number") ms = timestamp
  else if (timestamp instanceof Date) ms = timestamp.getTime()
  else if (typeof timestamp === "string" && timestamp.trim().length > 0) ms = Date.parse(timestamp)
  else return undefined
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? ms : undefined
}

const DAY_MS = 86_400_000
/** 10000-01-01T00:00:00.000Z: from there on `toISOString` writes a six-digit year. */
const YEAR_10000_MS = 253_402_300_800_000

/** "00" to "99". */
const TWO_DIGITS = Array.from({ length: 100 }, (_, n) => String(n).padStart(2, "0"))

/**
 * `new Date(ms).toISOString()`, in a few arithmetic steps for the times entries have (whole
 * milliseconds from 1970 to 9999; the date from the day number by Hinnant's `civil_from_days`);
 * `Date` writes any other. A compile formats every message's time, and `Date` costs about 0.3 µs
 * a call there.
 */
export const isoTime = (ms: number): string => {
  if (!Number.isInteger(ms) || ms < 0 || ms >= YEAR_10000_MS) return new Date(ms).toISOString()
  const days = Math.floor(ms / DAY_MS)
  const inDay = ms - days * DAY_MS
  // civil_from_days (http://howardhinnant.github.io/date_algorithms.html), for days ≥ 0.
  const z = days + 719_468
  const era = Math.floor(z / 146_097)
  const dayOfEra = z - era * 146_097
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365)
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100))
  const mp = Math.floor((5 * dayOfYear + 2) / 153)
  const day = dayOfYear - Math.floor((153 * mp + 2) / 5) + 1
  const month = mp < 10 ? mp + 3 : mp - 9
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
  const milli = inDay % 1000
  const centis = Math.floor(milli / 10)
  return (
    TWO_DIGITS[Math.floor(year / 100)]! + TWO_DIGITS[year % 100]! + "-" + TWO_DIGITS[month]! + "-" + TWO_DIGITS[day]! +
    "T" + TWO_DIGITS[Math.floor(inDay / 3_600_000)]! + ":" + TWO_DIGITS[Math.floor(inDay / 60_000) % 60]! + ":" + TWO_DIGITS[Math.floor(inDay / 1000) % 60]! +
    "." + TWO_DIGITS[centis]! + (milli - centis * 10) + "Z"
  )
}
