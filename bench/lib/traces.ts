/**
 * Access traces of the shapes the caching literature compares policies on, generated from a seed,
 * and the offline optimum (Belady's MIN) for each. Each trace names keys as strings.
 */
import { prng, zipf } from "./workload.js"

export interface Trace {
  readonly name: string
  readonly description: string
  readonly keys: ReadonlyArray<string>
}

const LENGTH = 200_000

export const traces = (seed = 7): Array<Trace> => {
  const random = prng(seed)
  const of = (n: number, next: (i: number) => string) => Array.from({ length: n }, (_, i) => next(i))
  return [
    {
      name: "zipf",
      description: "Zipf(1.0) over 1,000 keys: a stable popular set (frequency)",
      keys: ((pick) => of(LENGTH, () => `k${pick()}`))(zipf(1000, 1.0, random))
    },
    {
      name: "loop",
      description: "a loop over 500 keys, larger than most sizes (LRU's worst case)",
      keys: of(LENGTH, (i) => `k${i % 500}`)
    },
    {
      name: "shifting",
      description: "uniform over a 200-key working set that moves by 50 keys every 2,000 requests (recency)",
      keys: of(LENGTH, (i) => `k${50 * Math.floor(i / 2000) + Math.floor(random() * 200)}`)
    },
    {
      name: "recency",
      description: "LRU stack model: reuse at a Zipf(0.9) stack depth, 5 % new keys (recency)",
      keys: (() => {
        const depth = zipf(2000, 0.9, random)
        const stack: Array<string> = []
        let next = 0
        return of(LENGTH, () => {
          let key: string
          if (stack.length === 0 || random() < 0.05) key = `n${next++}`
          else {
            const d = Math.min(depth(), stack.length - 1)
            key = stack.splice(stack.length - 1 - d, 1)[0]!
          }
          stack.push(key)
          if (stack.length > 4000) stack.shift()
          return key
        })
      })()
    },
    {
      name: "mix",
      description: "half Zipf(0.9) over 5,000 keys, half short bursts of new keys (frequency and recency)",
      keys: (() => {
        const pick = zipf(5000, 0.9, random)
        let burst = 0
        return of(LENGTH, () => {
          if (random() < 0.5) return `z${pick()}`
          if (random() < 0.1) burst++
          return `b${burst}-${Math.floor(random() * 3)}`
        })
      })()
    },
    {
      name: "phases",
      description: "40-key working sets read round-robin 25 times each, then never again",
      keys: of(LENGTH, (i) => `p${Math.floor(i / 1000)}-${i % 40}`)
    }
  ]
}

/** The hit rate of Belady's MIN (evict the key used furthest in the future): no policy does better. */
export const optimum = (keys: ReadonlyArray<string>, capacity: number): number => {
  const next = new Array<number>(keys.length)
  const last = new Map<string, number>()
  for (let i = keys.length - 1; i >= 0; i--) {
    next[i] = last.get(keys[i]!) ?? Infinity
    last.set(keys[i]!, i)
  }
  // A max-heap of [next use, key]; stale heap entries are skipped when popped.
  const heap: Array<[number, string]> = []
  const push = (e: [number, string]) => {
    heap.push(e)
    for (let i = heap.length - 1; i > 0; ) {
      const p = (i - 1) >> 1
      if (heap[p]![0] >= heap[i]![0]) break
      ;[heap[p], heap[i]] = [heap[i]!, heap[p]!]
      i = p
    }
  }
  const pop = () => {
    const top = heap[0]!
    const end = heap.pop()!
    if (heap.length > 0) {
      heap[0] = end
      for (let i = 0; ; ) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < heap.length && heap[l]![0] > heap[m]![0]) m = l
        if (r < heap.length && heap[r]![0] > heap[m]![0]) m = r
        if (m === i) break
        ;[heap[m], heap[i]] = [heap[i]!, heap[m]!]
        i = m
      }
    }
    return top
  }
  const held = new Map<string, number>()
  let hits = 0
  keys.forEach((key, i) => {
    if (held.has(key)) hits++
    else if (held.size >= capacity) {
      for (;;) {
        const [use, victim] = pop()
        if (held.get(victim) === use) {
          held.delete(victim)
          break
        }
      }
    }
    held.set(key, next[i]!)
    push([next[i]!, key])
  })
  return hits / keys.length
}
