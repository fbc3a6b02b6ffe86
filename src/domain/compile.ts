/**
 * The pure steps of `compile`, numbered as in the README's "Compile semantics": no effects, no I/O, plain data in and out.
 */
import { Either, ParseResult, Schema } from "effect"
import { InvalidCompileRequest } from "./errors.js"
import { isImageType, matches, parseFilter } from "./filter.js"
import { CompileRequest, type Message, type NormalizedRequest, type Role, type StoreEntry, type Where } from "./schemas.js"
import { isoTime, timestampMs } from "./time.js"

export { timestampMs }

export const DEFAULT_RECENT_LIMIT = 10
export const DEFAULT_QUERY_LIMIT = 5
export const DEFAULT_LIMIT = 20
export const DEFAULT_ASSISTANT_NAME = "Pantheon"

export type Metadata = Readonly<Record<string, unknown>>

/** The caller's hooks that turn metadata into names, roles and times. */
export interface Resolvers {
  readonly resolveRole: (meta: Metadata) => unknown
  readonly resolveName: (meta: Metadata) => unknown
  readonly formatTime: (ms: number) => string
  readonly assistantName: string
}

/**
 * The reference's role resolver: `meta.role` whenever it is set, even to something that is not a
 * role (the message then falls back to the entry's own role rules, ending as "user"); else from
 * `meta.type`; else "system".
 */
export const defaultResolveRole = (meta: Metadata): unknown => {
  if (meta.role) return meta.role
  if (meta.type === "user") return "user"
  if (meta.type === "assistant") return "assistant"
  return "system"
}

/** `String(value)`, or undefined for a value that cannot become one (a throwing `toString`, a null-prototype object). */
export const safeString = (value: unknown): string | undefined => {
  try {
    return String(value)
  } catch {
    return undefined
  }
}

export const defaultResolveName = (meta: Metadata): string =>
  safeString(meta.displayName || meta.name || meta.id || "Unknown") ?? "Unknown"

/** The time as ISO 8601 in UTC (`Date.prototype.toISOString`'s text). */
export const defaultFormatTime: (ms: number) => string = isoTime

export const defaultResolvers: Resolvers = {
  resolveRole: defaultResolveRole,
  resolveName: defaultResolveName,
  formatTime: defaultFormatTime,
  assistantName: DEFAULT_ASSISTANT_NAME
}

export const isRole = (value: unknown): value is Role => value === "system" || value === "user" || value === "assistant"

const limitOr = (value: unknown, fallback: number): number => {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) return fallback
  const floored = Math.floor(value)
  return floored >= 1 ? floored : fallback
}

const decodeRequest = Schema.decodeUnknownEither(CompileRequest, { onExcessProperty: "ignore" })

/** The first source filter that does not parse, as the request's error naming its path (checked before decoding, which would drop a `__proto__` key). */
const invalidFilter = (raw: Record<string, unknown>): InvalidCompileRequest | undefined => {
  if (!Array.isArray(raw.sources)) return undefined
  for (const [i, source] of raw.sources.entries()) {
    if (source === null || typeof source !== "object") continue
    const parsed = parseFilter((source as Record<string, unknown>).where, `sources[${i}].where`)
    if (Either.isLeft(parsed)) return new InvalidCompileRequest({ field: parsed.left.field, value: parsed.left.value, reason: parsed.left.reason })
  }
  return undefined
}

/** Before step 1: the request with its defaults, or a typed error naming the field that is wrong. */
export const normalizeRequest = (input: unknown): Either.Either<NormalizedRequest, InvalidCompileRequest> => {
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    return Either.left(new InvalidCompileRequest({ field: "request", value: input, reason: "must be an object" }))
  }
  const raw = input as Record<string, unknown>
  const badFilter = invalidFilter(raw)
  if (badFilter !== undefined) return Either.left(badFilter)
  if (raw.sources === undefined) {
    return Either.right({ texts: [], sources: [], recentLimit: DEFAULT_RECENT_LIMIT, queryLimit: DEFAULT_QUERY_LIMIT, limit: DEFAULT_LIMIT, maxTokens: undefined, onSourceError: "skip" })
  }
  return Either.match(decodeRequest(input), {
    onLeft: (error) => {
      const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
      const path = issue?.path ?? []
      const field = path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("").replace(/^\./, "") || "request"
      let value: unknown = input
      for (const p of path) value = value !== null && typeof value === "object" ? (value as any)[p as any] : undefined
      return Either.left(new InvalidCompileRequest({ field, value, reason: issue?.message ?? "is invalid" }))
    },
    onRight: (request) => {
      const maxTokens = request.maxTokens
      if (maxTokens !== undefined && !(typeof maxTokens === "number" && Number.isInteger(maxTokens) && maxTokens >= 1)) {
        return Either.left(new InvalidCompileRequest({ field: "maxTokens", value: maxTokens, reason: "must be a whole number of tokens, at least 1" }))
      }
      return Either.right({
        texts: (request.texts ?? []).filter((t): t is string => typeof t === "string" && t.trim().length > 0),
        sources: request.sources,
        recentLimit: limitOr(request.recentLimit, DEFAULT_RECENT_LIMIT),
        queryLimit: limitOr(request.queryLimit, DEFAULT_QUERY_LIMIT),
        limit: limitOr(request.limit, DEFAULT_LIMIT),
        maxTokens,
        onSourceError: request.onSourceError ?? "skip"
      })
    }
  })
}

export const isImage = (entry: StoreEntry): boolean => isImageType((entry.metadata as Metadata | null | undefined)?.type)

/** A source's filter as a test of the entries a store returned (a deliberate change: `where` is honoured); `normalizeRequest` has checked it parses. */
export const matcherOf = (where: Where | undefined): ((entry: StoreEntry) => boolean) => {
  const filter = Either.getOrThrow(parseFilter(where))
  return (entry) => matches(filter, entry)
}

/**
 * Step 3: relevance seeds. The caller's texts first, then the recent texts in order, exact duplicates
 * removed, cut to the first `queryLimit` (a deliberate change: the caller's texts are never dropped).
 */
export const buildSeeds = (texts: ReadonlyArray<string>, recent: ReadonlyArray<StoreEntry>, queryLimit: number): Array<string> => {
  const seen = new Set<string>()
  const seeds: Array<string> = []
  const add = (text: unknown) => {
    if (seeds.length >= queryLimit || typeof text !== "string" || text.trim().length === 0 || seen.has(text)) return
    seen.add(text)
    seeds.push(text)
  }
  texts.forEach(add)
  for (const entry of recent) add(entry.text)
  return seeds
}

/** An entry with its relevance priority: lower is more relevant (past the limit of step 5, the highest go first). */
export interface Candidate {
  readonly entry: StoreEntry
  readonly priority: number
}

/** A block ranked after another: its priorities start here (ranks never reach it). */
const SECOND = 1e9

/**
 * Step 5, the order: relevant non-image entries, then recent ones, then image-query ones (each as blocks, one
 * a source, best or newest first). An entry's priority is its place in its block (rank r of every
 * source ranks alike: scores of two sources do not compare). With a question, its evidence comes
 * first and the recent entries after every rank; without one (the seeds were the recent texts),
 * the recent entries come first.
 */
export const combine = (
  relevant: ReadonlyArray<ReadonlyArray<StoreEntry>>,
  recent: ReadonlyArray<ReadonlyArray<StoreEntry>>,
  images: ReadonlyArray<ReadonlyArray<StoreEntry>>,
  options: { readonly questionFirst: boolean } = { questionFirst: true }
): Array<Candidate> => {
  const [found, latest] = options.questionFirst ? [0, SECOND] : [SECOND, 0]
  const out: Array<Candidate> = []
  for (const block of relevant) block.forEach((entry, rank) => !isImage(entry) && out.push({ entry, priority: found + rank }))
  for (const block of recent) block.forEach((entry, position) => out.push({ entry, priority: latest + position }))
  for (const block of images) block.forEach((entry, rank) => out.push({ entry, priority: found + rank }))
  return out
}

/** An entry that survived step 5's checks, with its parsed time. */
export interface ValidEntry {
  readonly entry: StoreEntry
  readonly text: string
  readonly meta: Metadata
  readonly ms: number
  /** Its relevance priority (lower: more relevant), from `combine`. */
  readonly priority: number
}

/**
 * Step 5, the checks: keep entries with a non-blank text and object metadata (a blank text is skipped, as the
 * reference does). An entry that is not an object, whose text is not a string, whose metadata is
 * not an object, or whose timestamp is missing or unparseable is skipped and counted in `invalid`
 * (a deliberate change: the reference throws and loses the compile).
 */
export const validate = (candidates: ReadonlyArray<Candidate>): { valid: Array<ValidEntry>; invalid: number } => {
  const valid: Array<ValidEntry> = []
  let invalid = 0
  for (const { entry: candidate, priority } of candidates) {
    if (candidate === null || typeof candidate !== "object" || Array.isArray(candidate)) {
      invalid++
      continue
    }
    const entry = candidate as StoreEntry
    const { text, metadata } = entry
    if (typeof text !== "string" || metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) {
      invalid++
      continue
    }
    if (text.trim().length === 0) continue
    const ms = timestampMs(entry.timestamp)
    if (ms === undefined) {
      invalid++
      continue
    }
    valid.push({ entry, text, meta: metadata as Metadata, ms, priority })
  }
  return { valid, invalid }
}

/** Step 5, dedupe: by exact text; the first occurrence wins, with the best priority of its copies. */
export const dedupe = (entries: ReadonlyArray<ValidEntry>): Array<ValidEntry> => {
  const first = new Map<string, ValidEntry>()
  for (const e of entries) {
    const kept = first.get(e.text)
    if (kept === undefined) first.set(e.text, e)
    else if (e.priority < kept.priority) first.set(e.text, { ...kept, priority: e.priority })
  }
  return [...first.values()]
}

/** Step 5, the order kept: ascending by time; ties keep their order (Array.prototype.sort is stable). */
export const sortByTime = (entries: ReadonlyArray<ValidEntry>): Array<ValidEntry> => [...entries].sort((a, b) => a.ms - b.ms)

/**
 * Step 5, the limit: at most `limit × max(managers, 1) × 2` entries; past it, the least relevant go first
 * (deliberate change: the reference kept the newest). Ties keep their order. What is kept keeps the
 * order it came in.
 */
export const keepMostRelevant = (entries: ReadonlyArray<ValidEntry>, limit: number, managers: number): Array<ValidEntry> => {
  const max = limit * Math.max(managers, 1) * 2
  if (entries.length <= max) return [...entries]
  const kept = new Set(byPriority(entries).slice(0, max))
  return entries.filter((e) => kept.has(e))
}

/** The entries most relevant first (stable). */
const byPriority = <A extends { readonly priority: number }>(entries: ReadonlyArray<A>): Array<A> =>
  entries.map((e, i) => [e, i] as const).sort((a, b) => a[0].priority - b[0].priority || a[1] - b[1]).map(([e]) => e)

/** A resolver that throws is treated as returning nothing valid; `onError` hears about it. */
const attempt = <A>(f: () => A, onError: (e: unknown) => void): A | undefined => {
  try {
    return f()
  } catch (e) {
    onError(e)
    return undefined
  }
}

/**
 * A message before its content is put together: the content is its body (the entry's text, an
 * image's caption) after a head saying who spoke and when, `<speaker><said><time>): `, or the body
 * alone when `said` is "" (the assistant's own words, an image). The token counts are kept under
 * the body, the part a store hands back unchanged from compile to compile, with the head's parts
 * (`sameHead`), which are compared without putting the head together.
 */
export interface MessageParts {
  readonly role: Role
  readonly speaker: string
  readonly said: string
  readonly time: string
  readonly body: string
  readonly images?: [string]
}

/** Step 6: one entry to one message. */
export const toMessage = (
  entry: ValidEntry,
  resolvers: Resolvers,
  onResolverError: (hook: string, error: unknown) => void = () => {}
): Message => joinParts(messageParts(entry, resolvers, onResolverError))

/** The content of a message's parts. */
export const contentOf = ({ speaker, said, time, body }: Pick<MessageParts, "speaker" | "said" | "time" | "body">): string =>
  said === "" ? body : speaker + said + time + "): " + body

/** Whether two messages' heads are the same (their contents then differ only by their bodies). */
export const sameHead = (a: Pick<MessageParts, "speaker" | "said" | "time">, b: Pick<MessageParts, "speaker" | "said" | "time">): boolean =>
  a.speaker === b.speaker && a.said === b.said && a.time === b.time

/** The message of its parts. */
export const joinParts = (parts: MessageParts): Message =>
  parts.images === undefined ? { role: parts.role, content: contentOf(parts) } : { role: parts.role, content: contentOf(parts), images: parts.images }

/** Step 6's parts: one entry's message before its content is put together. */
export const messageParts = (
  { entry, text, meta, ms }: ValidEntry,
  resolvers: Resolvers,
  onResolverError: (hook: string, error: unknown) => void = () => {}
): MessageParts => {
  const resolved = attempt(() => resolvers.resolveName(meta), (e) => onResolverError("resolveName", e))
  const fallback = meta.displayName ?? meta.name ?? meta.userName
  const name =
    typeof resolved === "string" && resolved.trim().length > 0
      ? resolved.trim()
      : fallback !== undefined && fallback !== null
        ? (safeString(fallback) ?? "Unknown")
        : "Unknown"
  const isAssistant = name === resolvers.assistantName
  const isThought = Boolean(meta.isThought)
  const resolvedRole = attempt(() => resolvers.resolveRole(meta), (e) => onResolverError("resolveRole", e))
  const role: Role = isRole(resolvedRole)
    ? resolvedRole
    : isRole(meta.role)
      ? meta.role
      : isAssistant
        ? isThought ? "system" : "assistant"
        : "user"
  if (isImage(entry)) {
    const caption = meta.caption
    return {
      role,
      speaker: "",
      said: "",
      time: "",
      body: typeof caption === "string" && caption.trim().length > 0 ? caption : `${name} shared an image`,
      images: [text]
    }
  }
  if (isAssistant && !isThought) return { role, speaker: "", said: "", time: "", body: text }
  const formatted = attempt(() => resolvers.formatTime(ms), (e) => onResolverError("formatTime", e))
  const time = typeof formatted === "string" ? formatted : defaultFormatTime(ms)
  return { role, speaker: name, said: isThought ? " thought (" : " said (", time, body: text }
}

/** A chat message's tokens as a model counts them: its content plus the message's own framing (role, separators). */
export const MESSAGE_OVERHEAD_TOKENS = 4

/** Counts the tokens of a text (the tokenizer: src/domain/tokens.ts). */
export type TokenCount = (text: string) => number

/**
 * The token budget: the messages most relevant first, each taken while the total stays within
 * `maxTokens` (one that does not fit is passed over, a smaller one after it may still fit); the
 * total never exceeds it. Returns the indexes kept.
 */
export const fillTokenBudget = (
  messages: ReadonlyArray<{ readonly message: Message; readonly priority: number; readonly tokens: number }>,
  maxTokens: number
): Set<number> => {
  const order = byPriority(messages.map((m, i) => ({ priority: m.priority, i, tokens: m.tokens })))
  const kept = new Set<number>()
  let total = 0
  for (const { i, tokens } of order) {
    if (total + tokens > maxTokens) continue
    total += tokens
    kept.add(i)
  }
  return kept
}

/** Steps 5 and 6 over the combined entries: the messages in time order, each with its relevance priority. */
export const assemble = (
  combined: ReadonlyArray<Candidate>,
  options: { readonly limit: number; readonly managers: number; readonly resolvers: Resolvers; readonly onResolverError?: (hook: string, error: unknown) => void }
): { messages: Array<Message>; parts: Array<MessageParts>; priorities: Array<number>; invalid: number } => {
  const { valid, invalid } = validate(combined)
  const kept = sortByTime(keepMostRelevant(dedupe(valid), options.limit, options.managers))
  const parts = kept.map((e) => messageParts(e, options.resolvers, options.onResolverError))
  return { messages: parts.map(joinParts), parts, priorities: kept.map((e) => e.priority), invalid }
}

/**
 * The token budget over assembled messages (`tokens`: each one's count): the most relevant that fit
 * within `maxTokens` (all of them without a budget), still in time order, and their total.
 */
export const withinTokens = (
  assembled: { readonly messages: ReadonlyArray<Message>; readonly priorities: ReadonlyArray<number> },
  tokens: ReadonlyArray<number>,
  maxTokens: number | undefined
): { messages: Array<Message>; tokens: number } => {
  const all = assembled.messages.map((message, i) => ({ message, priority: assembled.priorities[i]!, tokens: tokens[i]! }))
  const kept = maxTokens === undefined ? all : (() => {
    const within = fillTokenBudget(all, maxTokens)
    return all.filter((_, i) => within.has(i))
  })()
  return { messages: kept.map((m) => m.message), tokens: kept.reduce((sum, m) => sum + m.tokens, 0) }
}
