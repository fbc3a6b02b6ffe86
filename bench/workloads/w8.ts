/**
 * w8: context quality on LoCoMo (bench/lib/locomo.ts): every question of categories 1-4 compiled
 * with the question as `texts`, one source a conversation. The metric is the benchmark authors' own
 * retrieval metric: the share of a question's evidence turns whose message reaches the context,
 * averaged over questions (`evidenceRecall`); `allEvidence` is the share of questions with all of it.
 * Rows: `ours` (defaults), `oursMaxTokens600` (a token budget of 600), `oursSqlOnly` (every source
 * served by SQL: the same answers expected), `bm25` (a plain Okapi BM25 written here: top 20 + the 10
 * most recent turns), `recent` (the 30 most recent), `fullContext` (every turn). `tokens`: mean tokens
 * of a compile's messages (gpt-tokenizer cl100k_base, each message's framing included).
 * `npm run bench -- w8 --locomo <dir>`; without `--locomo` it says how to get the data and is skipped.
 */
import { Effect, Layer, ManagedRuntime } from "effect"
import { defaultResolvers, MESSAGE_OVERHEAD_TOKENS, timestampMs, toMessage } from "../../src/domain/compile.js"
import type { Message, StoreEntry } from "../../src/domain/schemas.js"
import { loadTokenCount } from "../../src/domain/tokens.js"
import { EmbeddedStoreLive } from "../../src/layers/EmbeddedStoreLive.js"
import { PersistenceAdapterLive } from "../../src/layers/PersistenceAdapterLive.js"
import { ContextCompiler } from "../../src/services/ContextCompiler.js"
import { SqlStore } from "../../src/stores/sql/SqlStore.js"
import { type Conversation, readLocomo } from "../lib/locomo.js"
import { results, table } from "../lib/report.js"
import { percentile, round } from "../lib/workload.js"

export const locomoDir = (): string | undefined => {
  const at = process.argv.indexOf("--locomo")
  return at >= 0 ? process.argv[at + 1] : process.env.PANTHEON_LOCOMO
}

type Compile = (conversation: Conversation, question: string) => Promise<Array<Message>>

interface Row {
  readonly row: string
  readonly evidenceRecall: number
  readonly allEvidence: number
  readonly byCategory: Record<string, number>
  readonly tokens: number
  readonly messages: number
  readonly p50Ms: number
}

const plainWords = (text: string) => text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []

/** A plain Okapi BM25 (k1 1.2, b 0.75, no stemming, no stop words) over one conversation's turns, as a user would write it. */
const plainBm25 = (entries: Conversation["entries"]) => {
  const docs = entries.map((e) => plainWords(e.text))
  const df = new Map<string, number>()
  const tfs = docs.map((d) => {
    const tf = new Map<string, number>()
    for (const w of d) tf.set(w, (tf.get(w) ?? 0) + 1)
    for (const w of tf.keys()) df.set(w, (df.get(w) ?? 0) + 1)
    return tf
  })
  const average = docs.reduce((n, d) => n + d.length, 0) / docs.length
  return (question: string, k: number): Array<number> => {
    const terms = [...new Set(plainWords(question))]
    const scores = tfs.map((tf, i) => {
      let s = 0
      for (const t of terms) {
        const f = tf.get(t)
        if (f === undefined) continue
        const n = df.get(t)!
        s += Math.log(1 + (docs.length - n + 0.5) / (n + 0.5)) * (f * 2.2) / (f + 1.2 * (0.25 + (0.75 * docs[i]!.length) / average))
      }
      return s
    })
    return scores.map((s, i) => [s, i] as const).filter(([s]) => s > 0).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k).map(([, i]) => i)
  }
}

/** Entries as a compile would show them: deduped by text, in time order, as messages. */
const asMessages = (entries: ReadonlyArray<StoreEntry>): Array<Message> => {
  const seen = new Set<string>()
  return entries
    .filter((e) => (seen.has(e.text as string) ? false : (seen.add(e.text as string), true)))
    .map((e) => ({ e, ms: timestampMs(e.timestamp)! }))
    .sort((a, b) => a.ms - b.ms)
    .map(({ e, ms }) => toMessage({ entry: e, text: e.text as string, meta: e.metadata as Record<string, unknown>, ms, priority: 0 }, defaultResolvers))
}

const measure = async (name: string, conversations: ReadonlyArray<Conversation>, compile: Compile): Promise<Row> => {
  const count = await Effect.runPromise(loadTokenCount)
  let recall = 0
  let complete = 0
  let questions = 0
  let tokens = 0
  let messages = 0
  const byCategory: Record<string, [number, number]> = { "1": [0, 0], "2": [0, 0], "3": [0, 0], "4": [0, 0] }
  const times: Array<number> = []
  for (const conversation of conversations) {
    // Which turns a message shows: its content is the turn's message, as the compile maps it.
    const turnsOf = new Map<string, Array<string>>()
    for (const m of asMessages(conversation.entries)) turnsOf.set(m.content, [])
    const seen = new Set<string>()
    for (const e of conversation.entries) {
      if (seen.has(e.text)) continue
      seen.add(e.text)
      const [m] = asMessages([e])
      turnsOf.get(m!.content)?.push(e.metadata.diaId)
    }
    // Later turns with a text seen before are shown by the first one's message.
    const byText = new Map<string, string>()
    for (const e of conversation.entries) if (!byText.has(e.text)) byText.set(e.text, e.metadata.diaId)
    const alias = new Map(conversation.entries.map((e) => [e.metadata.diaId, byText.get(e.text)!]))
    for (const q of conversation.questions) {
      const started = performance.now()
      const context = await compile(conversation, q.question)
      times.push(performance.now() - started)
      const shown = new Set(context.flatMap((m) => turnsOf.get(m.content) ?? []))
      const evidence = q.evidence.filter((e) => alias.has(e))
      if (evidence.length === 0) continue
      const share = evidence.filter((e) => shown.has(alias.get(e)!)).length / evidence.length
      recall += share
      complete += share === 1 ? 1 : 0
      questions++
      byCategory[String(q.category)]![0] += share
      byCategory[String(q.category)]![1]++
      tokens += context.reduce((n, m) => n + count(m.content) + MESSAGE_OVERHEAD_TOKENS, 0)
      messages += context.length
    }
  }
  return {
    row: name,
    evidenceRecall: round(recall / questions, 4),
    allEvidence: round(complete / questions, 4),
    byCategory: Object.fromEntries(Object.entries(byCategory).map(([k, [s, n]]) => [k, round(s / Math.max(1, n), 4)])),
    tokens: round(tokens / questions, 0),
    messages: round(messages / questions, 1),
    p50Ms: round(percentile(times, 50), 2)
  }
}

/** Our compile over an embedded store holding every conversation. */
const oursRow = async (name: string, conversations: ReadonlyArray<Conversation>, options: { readonly maxTokens?: number; readonly warmBytes?: number }) => {
  const live = PersistenceAdapterLive({ cache: { ttl: "1 hour", warmBytes: options.warmBytes ?? 256 * 1024 * 1024 } }).pipe(
    Layer.provideMerge(EmbeddedStoreLive({ dataDir: "memory://", dimensions: 256 }))
  )
  const runtime = ManagedRuntime.make(live)
  try {
    await runtime.runPromise(Effect.gen(function* () {
      const store = yield* SqlStore
      for (const c of conversations) {
        yield* store.registerSource(c.id)
        yield* (yield* store.open(c.id)).insert(c.entries)
      }
    }))
    const compiler = await runtime.runPromise(ContextCompiler)
    return await measure(name, conversations, (c, question) =>
      runtime.runPromise(compiler.compile({ sources: [{ id: c.id }], texts: [question], ...(options.maxTokens === undefined ? {} : { maxTokens: options.maxTokens }) })))
  } finally {
    await runtime.dispose()
  }
}

export const w8 = async () => {
  const dir = locomoDir()
  if (dir === undefined) {
    console.log("w8 skipped: it needs LoCoMo (github.com/snap-research/locomo, data/locomo10.json or the per-conversation files): npm run bench -- w8 --locomo <dir>")
    return
  }
  const conversations = readLocomo(dir)
  console.log(`w8: ${conversations.length} conversations, ${conversations.reduce((n, c) => n + c.entries.length, 0)} turns, ${conversations.reduce((n, c) => n + c.questions.length, 0)} questions`)
  const rows: Array<Row> = []
  rows.push(await oursRow("ours", conversations, {}))
  rows.push(await oursRow("oursMaxTokens600", conversations, { maxTokens: 600 }))
  rows.push(await oursRow("oursSqlOnly", conversations, { warmBytes: 0 }))
  const indexes = new Map(conversations.map((c) => [c.id, plainBm25(c.entries)]))
  rows.push(await measure("bm25", conversations, async (c, q) => {
    const found = indexes.get(c.id)!(q, 20).map((i) => c.entries[i]!)
    return asMessages([...found, ...c.entries.slice(-10)])
  }))
  rows.push(await measure("recent", conversations, async (c) => asMessages(c.entries.slice(-30))))
  rows.push(await measure("fullContext", conversations, async (c) => asMessages(c.entries)))
  results.w8 = Object.fromEntries(rows.map(({ row, ...figures }) => [row, figures]))
  table(
    "w8: evidence recall on LoCoMo (share of a question's evidence turns in the context; categories 1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop)",
    rows.map((r) => ({
      row: r.row,
      evidenceRecall: r.evidenceRecall,
      allEvidence: r.allEvidence,
      cat1: r.byCategory["1"],
      cat2: r.byCategory["2"],
      cat3: r.byCategory["3"],
      cat4: r.byCategory["4"],
      tokens: r.tokens,
      messages: r.messages,
      p50Ms: r.p50Ms
    }))
  )
}
