import { describe, expect, it } from "vitest"
import { Either } from "effect"
import {
  assemble,
  buildSeeds,
  combine,
  dedupe,
  defaultResolvers,
  fillTokenBudget,
  keepMostRelevant,
  matcherOf,
  normalizeRequest,
  sortByTime,
  timestampMs,
  toMessage,
  validate,
  withinTokens
} from "../src/domain/compile.js"
import { entry } from "./support/doubles.js"

/** An entry as a candidate of no particular relevance. */
const c = (e: unknown) => ({ entry: e as ReturnType<typeof entry>, priority: 0 })
const one = (e: ReturnType<typeof entry>) => validate([c(e)]).valid[0]!

describe("normalizeRequest", () => {
  it("applies the defaults", () => {
    expect(Either.getOrThrow(normalizeRequest({ sources: [] }))).toMatchObject({ texts: [], recentLimit: 10, queryLimit: 5, limit: 20, onSourceError: "skip" })
  })

  it("falls back to the default for limits that are not finite numbers above 0, and floors fractions", () => {
    const r = Either.getOrThrow(normalizeRequest({ sources: [], recentLimit: -1, queryLimit: Number.NaN, limit: 7.9 }))
    expect([r.recentLimit, r.queryLimit, r.limit]).toEqual([10, 5, 7])
    const s = Either.getOrThrow(normalizeRequest({ sources: [], recentLimit: "3", queryLimit: Infinity, limit: 0 }))
    expect([s.recentLimit, s.queryLimit, s.limit]).toEqual([10, 5, 20])
  })

  it("keeps only non-blank string texts", () => {
    expect(Either.getOrThrow(normalizeRequest({ sources: [], texts: ["a", " ", "", 3, null, "b"] })).texts).toEqual(["a", "b"])
  })

  it("refuses a malformed request with a typed error naming the field and value", () => {
    const bad = normalizeRequest({ sources: [{ id: 42 }] })
    expect(Either.isLeft(bad) && bad.left).toMatchObject({ _tag: "InvalidCompileRequest", field: "sources[0].id", value: 42 })
    const notArray = normalizeRequest({ sources: "chat" })
    expect(Either.isLeft(notArray) && notArray.left.field).toBe("sources")
    const empty = normalizeRequest({ sources: [{ id: "" }] })
    expect(Either.isLeft(empty) && empty.left.message).toContain("sources[0].id")
    expect(Either.isLeft(normalizeRequest(null))).toBe(true)
    const where = normalizeRequest({ sources: [{ id: "a", where: "type = 'x'" }] })
    expect(Either.isLeft(where) && where.left.field).toBe("sources[0].where")
  })
})

describe("buildSeeds (deliberate change 1: caller texts are never dropped)", () => {
  it("puts the caller's texts first, then recent texts, deduped, cut to queryLimit", () => {
    const recent = Array.from({ length: 10 }, (_, i) => entry(`r${i}`, "2024-01-01T00:00:00Z"))
    expect(buildSeeds(["question"], recent, 5)).toEqual(["question", "r0", "r1", "r2", "r3"])
    expect(buildSeeds(["a", "a", "r0"], [entry("r0", "2024-01-01T00:00:00Z"), entry("r1", "2024-01-01T00:00:00Z")], 5)).toEqual(["a", "r0", "r1"])
    expect(buildSeeds([], [], 5)).toEqual([])
  })
})

describe("combine, validate, dedupe, sort, limit", () => {
  it("orders relevant non-image entries, then recent, then image-query entries", () => {
    const rel = [entry("rel", "2024-01-01T00:00:00Z"), entry("img-in-rel", "2024-01-01T00:00:00Z", { type: "IMAGE" })]
    const rec = [entry("rec", "2024-01-01T00:00:00Z")]
    const img = [entry("img", "2024-01-01T00:00:00Z", { type: "image" })]
    expect(combine([rel], [rec], [img]).map((e) => e.entry.text)).toEqual(["rel", "rec", "img"])
  })

  it("ranks a question's evidence by its place in each source's answer, recent entries after it; without a question, recent first", () => {
    const a = [entry("a0", new Date(1 * 1000).toISOString()), entry("a1", new Date(1 * 1000).toISOString())]
    const b = [entry("b0", new Date(1 * 1000).toISOString())]
    const rec = [entry("r0", new Date(1 * 1000).toISOString()), entry("r1", new Date(1 * 1000).toISOString())]
    const priorities = (cs: ReturnType<typeof combine>) => cs.map((x) => [x.entry.text, x.priority])
    const withQuestion = priorities(combine([a, b], [rec], []))
    expect(withQuestion.slice(0, 3)).toEqual([["a0", 0], ["a1", 1], ["b0", 0]])
    expect(withQuestion.slice(3).every(([, p]) => (p as number) > 1000)).toBe(true)
    const without = priorities(combine([a, b], [rec], [], { questionFirst: false }))
    expect(without.filter(([t]) => String(t).startsWith("r"))).toEqual([["r0", 0], ["r1", 1]])
    expect(without.filter(([t]) => !String(t).startsWith("r")).every(([, p]) => (p as number) > 1000)).toBe(true)
  })

  it("keeps entries with non-blank text and object metadata; counts and skips invalid entries (deliberate change 3)", () => {
    const { valid, invalid } = validate(([
      null,
      undefined,
      "a string",
      [entry("in an array", "2024-01-01T00:00:00Z")],
      entry("ok", "2024-01-01T00:00:00Z"),
      { text: "  ", timestamp: 1, metadata: {} },
      { text: "no meta", timestamp: 1, metadata: null },
      { text: "no meta 2", timestamp: 1 },
      { text: 5, timestamp: 1, metadata: {} },
      { text: "bad time", timestamp: "not a date", metadata: {} },
      { text: "missing time", timestamp: undefined, metadata: {} },
      { text: "date object", timestamp: new Date("2024-01-01T00:00:00Z"), metadata: {} }
    ] as Array<unknown>).map(c))
    expect(valid.map((v) => v.text)).toEqual(["ok", "date object"])
    // Counted: null, undefined, a string, an array, null and missing metadata, a number as text, two bad timestamps.
    // Not counted: the blank text (the reference skips it silently).
    expect(invalid).toBe(9)
  })

  it("parses numbers, Dates and date strings", () => {
    expect(timestampMs(5)).toBe(5)
    expect(timestampMs(new Date(7))).toBe(7)
    expect(timestampMs("2024-01-01T00:00:00.000Z")).toBe(Date.UTC(2024, 0, 1))
    expect(timestampMs(new Date("x"))).toBeUndefined()
    expect(timestampMs(Infinity)).toBeUndefined()
  })

  it("dedupes by exact text, first occurrence wins", () => {
    const deduped = dedupe(validate([entry("x", "2024-01-01T00:00:05Z", { from: "relevant" }), entry("x", "2024-01-01T00:00:01Z", { from: "recent" }), entry("X", "2024-01-01T00:00:01Z")].map(c)).valid)
    expect(deduped.map((d) => [d.text, d.meta.from])).toEqual([["x", "relevant"], ["X", undefined]])
    // A copy's better priority is kept with the first occurrence.
    const [kept] = dedupe(validate([{ entry: entry("y", new Date(1 * 1000).toISOString()), priority: 5 }, { entry: entry("y", new Date(2 * 1000).toISOString()), priority: 1 }]).valid)
    expect([kept!.ms, kept!.priority]).toEqual([1000, 1])
  })

  it("sorts ascending by time, stable on ties", () => {
    const sorted = sortByTime(validate([entry("b", "2024-01-01T00:00:02Z"), entry("t1", "2024-01-01T00:00:01Z"), entry("t2", "2024-01-01T00:00:01Z")].map(c)).valid)
    expect(sorted.map((s) => s.text)).toEqual(["t1", "t2", "b"])
  })

  it("keeps the most relevant limit × max(managers, 1) × 2, in the order they came (deliberate change: not the newest)", () => {
    // Ten entries, oldest first; the oldest are the most relevant.
    const xs = validate(Array.from({ length: 10 }, (_, i) => ({ entry: entry(`e${i}`, new Date(i * 1000).toISOString()), priority: i }))).valid
    expect(keepMostRelevant(xs, 2, 1).map((x) => x.text)).toEqual(["e0", "e1", "e2", "e3"])
    expect(keepMostRelevant(xs, 2, 0).map((x) => x.text)).toEqual(["e0", "e1", "e2", "e3"])
    expect(keepMostRelevant(xs, 1, 3).map((x) => x.text)).toEqual(["e0", "e1", "e2", "e3", "e4", "e5"])
    // Ties keep their order.
    const tied = validate(Array.from({ length: 5 }, (_, i) => ({ entry: entry(`t${i}`, new Date(i * 1000).toISOString()), priority: 0 }))).valid
    expect(keepMostRelevant(tied, 1, 1).map((x) => x.text)).toEqual(["t0", "t1"])
  })

  it("fills a token budget most relevant first, passing over what does not fit, never above it", () => {
    const m = (tokens: number, priority: number) => ({ message: { role: "user" as const, content: `${tokens}` }, priority, tokens })
    expect([...fillTokenBudget([m(50, 2), m(60, 0), m(30, 1), m(10, 3)], 100)].sort()).toEqual([1, 2, 3])
    expect(fillTokenBudget([m(101, 0)], 100).size).toBe(0)
    const assembled = { messages: [{ role: "user" as const, content: "old" }, { role: "user" as const, content: "new" }], priorities: [1, 0] }
    expect(withinTokens(assembled, [40, 40], 50)).toEqual({ messages: [{ role: "user", content: "new" }], tokens: 40 })
    expect(withinTokens(assembled, [40, 40], undefined).tokens).toBe(80)
  })
})

describe("matcherOf (deliberate change 2)", () => {
  it("is equality on every metadata field of a plain filter", () => {
    const e = entry("t", "2024-01-01T00:00:00Z", { type: "chat", user: "u1" })
    expect(matcherOf(undefined)(e)).toBe(true)
    expect(matcherOf({})(e)).toBe(true)
    expect(matcherOf({ type: "chat" })(e)).toBe(true)
    expect(matcherOf({ type: "chat", user: "u2" })(e)).toBe(false)
    expect(matcherOf({ missing: "x" })(e)).toBe(false)
  })

  it("matches type \"image\" in any case, as the stores do", () => {
    const e = entry("t", "2024-01-01T00:00:00Z", { type: "IMAGE" })
    expect(matcherOf({ type: "Image" })(e)).toBe(true)
    expect(matcherOf({ type: { $in: ["image", "chat"] } })(e)).toBe(true)
  })
})

describe("toMessage", () => {
  it("maps the reference example: default resolvers, ISO time", () => {
    const recent = [
      entry("second", "2024-01-01T00:00:02Z", { displayName: "Bob", role: "user" }),
      entry("first", "2024-01-01T00:00:01Z", { displayName: "Ann" })
    ]
    const { messages } = assemble(combine([], [recent], []), { limit: 20, managers: 1, resolvers: defaultResolvers })
    expect(messages).toEqual([
      { role: "system", content: "Ann said (2024-01-01T00:00:01.000Z): first" },
      { role: "user", content: "Bob said (2024-01-01T00:00:02.000Z): second" }
    ])
  })

  it("returns the 4 newest, oldest first, for 10 recent entries and limit 2", () => {
    const recent = Array.from({ length: 10 }, (_, i) => entry(`m${9 - i}`, `2024-01-01T00:00:0${9 - i}Z`, { name: "Ann" }))
    const { messages } = assemble(combine([], [recent], [], { questionFirst: false }), { limit: 2, managers: 1, resolvers: defaultResolvers })
    expect(messages.map((m) => m.content.split(": ")[1])).toEqual(["m6", "m7", "m8", "m9"])
  })

  it("keeps the assistant's own text raw; the default resolver gives it the system role", () => {
    expect(toMessage(one(entry("I answer", "2024-01-01T00:00:00Z", { name: "Pantheon" })), defaultResolvers)).toEqual({ role: "system", content: "I answer" })
  })

  it("marks thoughts, with the assistant's thoughts as system when no resolver decides", () => {
    const resolvers = { ...defaultResolvers, resolveRole: () => undefined }
    expect(toMessage(one(entry("hmm", "2024-01-01T00:00:00Z", { name: "Pantheon", isThought: true })), resolvers)).toEqual({
      role: "system",
      content: "Pantheon thought (2024-01-01T00:00:00.000Z): hmm"
    })
    expect(toMessage(one(entry("hi", "2024-01-01T00:00:00Z", { name: "Pantheon" })), resolvers).role).toBe("assistant")
    expect(toMessage(one(entry("hi", "2024-01-01T00:00:00Z", { name: "Zed" })), resolvers).role).toBe("user")
    expect(toMessage(one(entry("hi", "2024-01-01T00:00:00Z", { name: "Zed", role: "assistant" })), resolvers).role).toBe("assistant")
  })

  it("maps images to their caption or a default sentence, with the text as the image", () => {
    expect(toMessage(one(entry("http://img/1.png", "2024-01-01T00:00:00Z", { type: "image", displayName: "Ann", caption: "a cat" })), defaultResolvers)).toEqual({
      role: "system",
      content: "a cat",
      images: ["http://img/1.png"]
    })
    expect(toMessage(one(entry("data:x", "2024-01-01T00:00:00Z", { type: "Image", userName: "Kim" })), { ...defaultResolvers, resolveName: () => "" }).content).toBe(
      "Kim shared an image"
    )
  })

  it("treats a resolver that throws as returning nothing valid, and reports it", () => {
    const errors: Array<string> = []
    const resolvers = { ...defaultResolvers, resolveName: () => { throw new Error("boom") }, resolveRole: () => { throw new Error("bang") } }
    const message = toMessage(one(entry("hi", "2024-01-01T00:00:00Z", { displayName: "Ann", role: "user" })), resolvers, (hook) => errors.push(hook))
    expect(message).toEqual({ role: "user", content: "Ann said (2024-01-01T00:00:00.000Z): hi" })
    expect(errors).toEqual(["resolveName", "resolveRole"])
  })

  it("gives an entry whose role is set to something that is not a role the user role (spec step 11)", () => {
    // The default resolver returns meta.role when it is set; "admin" is not a role, and neither is it
    // valid as meta.role, and the entry is not the assistant's: "user" (it used to be "system").
    expect(toMessage(one(entry("hi", "2024-01-01T00:00:00Z", { displayName: "Ann", role: "admin" })), defaultResolvers).role).toBe("user")
    const invalid = { ...defaultResolvers, resolveRole: () => "moderator" }
    expect(toMessage(one(entry("hi", "2024-01-01T00:00:00Z", { displayName: "Ann" })), invalid).role).toBe("user")
    expect(toMessage(one(entry("hi", "2024-01-01T00:00:00Z", { displayName: "Ann", role: "assistant" })), invalid).role).toBe("assistant")
  })

  it("uses the caller's formatTime and trims resolved names", () => {
    const resolvers = { ...defaultResolvers, formatTime: (ms: number) => `t=${ms}`, resolveName: () => "  Ann  " }
    expect(toMessage(one({ text: "x", timestamp: 5, metadata: {} }), resolvers).content).toBe("Ann said (t=5): x")
  })
})
