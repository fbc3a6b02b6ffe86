/**
 * The k-th largest of the first `n` values (1 ≤ k ≤ n), by quickselect on a copy: expected linear
 * time, where sorting all of them costs n log n (a warm search needs only the cut of its best few).
 */
export const kthLargest = (values: Float64Array, n: number, k: number): number => {
  const a = values.slice(0, n)
  // The k-th largest is the (n − k)-th smallest, 0-based.
  const target = n - k
  let lo = 0
  let hi = n - 1
  while (lo < hi) {
    // Median of three as the pivot (sorted or reversed input stays linear).
    const mid = (lo + hi) >>> 1
    const x = a[lo]!
    const y = a[mid]!
    const z = a[hi]!
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y
    let i = lo
    let j = hi
    while (i <= j) {
      while (a[i]! < pivot) i++
      while (a[j]! > pivot) j--
      if (i <= j) {
        const t = a[i]!
        a[i++] = a[j]!
        a[j--] = t
      }
    }
    if (target <= j) hi = j
    else if (target >= i) lo = i
    else return a[target]!
  }
  return a[lo]!
}
