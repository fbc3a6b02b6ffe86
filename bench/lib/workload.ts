/** Deterministic workloads for the benchmarks: a seeded PRNG and a Zipf sampler. */

// The seeded PRNG and Zipf sampler live with the tests' support, so that tests import nothing from bench/.
export { prng, zipf } from "../../test/support/random.js"

/** Probability mass of the `top` most popular ranks: the hit rate of a cache that always holds them. */
export const zipfTopMass = (n: number, s: number, top: number) => {
  let all = 0
  let head = 0
  for (let k = 0; k < n; k++) {
    const p = 1 / Math.pow(k + 1, s)
    all += p
    if (k < top) head += p
  }
  return head / all
}

export const percentile = (values: ReadonlyArray<number>, p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

export const round = (x: number, digits = 3) => Number(x.toFixed(digits))
