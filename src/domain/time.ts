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
