/**
 * Access traces of the shapes the caching literature compares policies on, generated from a seed,
 * and the offline optimum (Belady's MIN) for each. Each trace names keys as strings.
 */
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
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

// ---------------------------------------------------------------------------------------------
// Public traces: the files Caffeine's simulator reads (the LIRS set, cache2k's, scarab's), read
// from a directory of the user's (never committed: `--traces <dir>` or PANTHEON_TRACES).

/** How a trace file stores its keys: LIRS text (one block number a line, `*` marks ignored), 4-byte or 8-byte big-endian integers. */
type Format = "lirs" | "int32" | "int64"

export interface PublicTrace extends Trace {
  /** The cache sizes it is replayed at. */
  readonly sizes: ReadonlyArray<number>
  /** Published W-TinyLFU hit rates (Caffeine 2.3) by size, where known. */
  readonly published: Readonly<Record<number, number>>
}

interface TraceFile {
  readonly name: string
  readonly file: string
  readonly format: Format
  readonly description: string
  readonly sizes: ReadonlyArray<number>
  readonly published?: Readonly<Record<number, number>>
  /** Replay only the first this many requests (to keep the bench within minutes). */
  readonly requests?: number
}

/** Where the files are: the directory in Caffeine's repository (simulator/src/main/resources/.../simulator/parser/). */
export const TRACE_SOURCE = "github.com/ben-manes/caffeine, simulator/src/main/resources/com/github/benmanes/caffeine/cache/simulator/parser/{lirs,cache2k,scarab}"

/** The bench's subset: the short loop-heavy LIRS traces issue 17 names, two more of the LIRS set, cache2k's web traces and scarab. */
export const TRACE_FILES: ReadonlyArray<TraceFile> = [
  { name: "gli", file: "gli.trace", format: "lirs", description: "LIRS glimpse: loops (6,015 requests)", sizes: [250, 500, 1000, 1500, 2000], published: { 500: 0.3305, 1000: 0.493 } },
  { name: "multi2", file: "multi2.trace", format: "lirs", description: "LIRS multi2: loops and a scan (26,311)", sizes: [600, 1200, 1800, 3000], published: { 1800: 0.6758, 3000: 0.7797 } },
  { name: "cpp", file: "cpp.trace", format: "lirs", description: "LIRS cpp: short loops (9,047)", sizes: [25, 50, 100, 200], published: { 50: 0.5677 } },
  { name: "sprite", file: "sprite.trace", format: "lirs", description: "LIRS sprite: recency and frequency (133,996)", sizes: [100, 200, 400, 800], published: { 200: 0.4967 } },
  { name: "cs", file: "cs.trace", format: "lirs", description: "LIRS cs: loops (6,781)", sizes: [100, 200, 400, 800] },
  { name: "ps", file: "ps.trace", format: "lirs", description: "LIRS ps: loops (10,448)", sizes: [100, 200, 400, 800] },
  { name: "web07", file: "web07.trace", format: "int32", description: "cache2k web07: a web server's pages (76,118)", sizes: [75, 300, 1200, 3000] },
  { name: "web12", file: "web12.trace", format: "int32", description: "cache2k web12: a web server's pages (95,607)", sizes: [75, 300, 1200, 3000] },
  { name: "orm-busy", file: "orm-busy.trace", format: "int32", description: "cache2k orm-busy: an application's object-relational mapper, a busy hour (5,000,000)", sizes: [1000, 5000], requests: 1_000_000 },
  { name: "orm-night", file: "orm-night.trace", format: "int32", description: "cache2k orm-night: the same mapper at night (5,000,000)", sizes: [1000, 5000], requests: 1_000_000 },
  { name: "scarab", file: "scarab-recs.trace", format: "int64", description: "scarab recs: a recommender's database (1,245,184); frequency is a negative signal", sizes: [1000, 10000] }
]

const parse = (bytes: Buffer, format: Format): Array<string> => {
  if (format === "lirs") return bytes.toString("utf8").split("\n").filter((line) => /^\d+$/.test(line.trim())).map((line) => `k${line.trim()}`)
  const width = format === "int32" ? 4 : 8
  const keys = new Array<string>(Math.floor(bytes.length / width))
  for (let i = 0; i < keys.length; i++) {
    keys[i] = format === "int32" ? `k${bytes.readInt32BE(i * 4)}` : `k${bytes.readBigInt64BE(i * 8)}`
  }
  return keys
}

/** The traces found in `dir` (as named in `TRACE_FILES`; `whole`: every request, not the bench's first ones), and the names of those missing. */
export const publicTraces = (dir: string, whole = false): { readonly traces: Array<PublicTrace>; readonly missing: Array<string> } => {
  const traces: Array<PublicTrace> = []
  const missing: Array<string> = []
  for (const t of TRACE_FILES) {
    const path = join(dir, t.file)
    if (!existsSync(path)) {
      missing.push(t.file)
      continue
    }
    traces.push({ name: t.name, description: whole || t.requests === undefined ? t.description : `${t.description}, its first ${t.requests.toLocaleString("en")} replayed`, sizes: t.sizes, published: t.published ?? {}, keys: parse(readFileSync(path), t.format).slice(0, whole ? undefined : t.requests) })
  }
  return { traces, missing }
}
