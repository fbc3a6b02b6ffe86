/** Seeded randomness for tests and benchmarks: a PRNG and a Zipf sampler (the benchmarks re-export these). */

/** mulberry32: a small, fast, seeded PRNG (0 ≤ x < 1). */
export const prng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Samples ranks 0..n-1 with P(k) ∝ 1/(k+1)^s. */
export const zipf = (n: number, s: number, random: () => number) => {
  const cdf = new Float64Array(n)
  let sum = 0
  for (let k = 0; k < n; k++) cdf[k] = sum += 1 / Math.pow(k + 1, s)
  for (let k = 0; k < n; k++) cdf[k] = cdf[k]! / sum
  return () => {
    const u = random()
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (cdf[mid]! < u) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}
