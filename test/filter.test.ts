/**
 * Filters on plain data: what each operator means, on missing fields and across types, the image
 * rule, and every bad filter refused with the path of what is wrong.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { normalizeRequest } from "../src/domain/compile.js"
import { compareText, filterKey, matches, MAX_FILTER_CONDITIONS, MAX_FILTER_DEPTH, MAX_FILTER_LIST, parseFilter } from "../src/domain/filter.js"
import type { StoreEntry } from "../src/domain/schemas.js"

const T0 = Date.parse("2024-01-01T00:00:00Z")
const row = (metadata: Record<string, unknown>, timestamp: unknown = T0): StoreEntry => ({ text: "t", timestamp, metadata })

/** Whether the entry passes `where` (which must parse). */
const passes = (where: unknown, entry: StoreEntry) => matches(Either.getOrThrow(parseFilter(where)), entry)

/** The error of a filter that must not parse. */
const refused = (where: unknown) => {
  const parsed = parseFilter(where)
  if (Either.isRight(parsed)) throw new Error(`expected ${JSON.stringify(where)} to be refused`)
  return parsed.left
}

describe("plain equality (today's filters keep their meaning)", () => {
  const e = row({ user: "u1", type: "chat", n: 3, ok: true, none: null })

  it("holds when every field is equal, strictly", () => {
    expect(passes({}, e)).toBe(true)
    expect(passes(undefined, e)).toBe(true)
    expect(passes({ user: "u1", type: "chat" }, e)).toBe(true)
    expect(passes({ user: "u1", type: "note" }, e)).toBe(false)
    expect(passes({ n: 3, ok: true, none: null }, e)).toBe(true)
    expect(passes({ n: "3" }, e)).toBe(false)
    expect(passes({ ok: "true" }, e)).toBe(false)
  })

  it("never holds on a missing field, even for null", () => {
    expect(passes({ missing: "x" }, e)).toBe(false)
    expect(passes({ missing: null }, e)).toBe(false)
    expect(passes({ undef: 1 }, row({ undef: undefined }))).toBe(false)
  })

  it("matches type \"image\" in any case against any case, and nothing else case-insensitively", () => {
    for (const stored of ["image", "Image", "IMAGE", "iMaGe"]) {
      for (const wanted of ["image", "Image", "IMAGE"]) expect(passes({ type: wanted }, row({ type: stored }))).toBe(true)
    }
    expect(passes({ type: "Chat" }, row({ type: "chat" }))).toBe(false)
    expect(passes({ kind: "Image" }, row({ kind: "image" }))).toBe(false) // the rule is type's only
    expect(passes({ type: "image" }, row({ type: "İMAGE" }))).toBe(false) // ASCII case only, as SQL's "C" lower
    expect(passes({ type: "image" }, row({ type: ["image"] }))).toBe(false)
  })
})

describe("operators", () => {
  const e = row({ n: 5, s: "m", type: "Image", flag: false, none: null, list: [1, 2], obj: { a: 1 } })

  it("$eq and $ne; $ne matches a missing field and a field of another type", () => {
    expect(passes({ n: { $eq: 5 } }, e)).toBe(true)
    expect(passes({ n: { $ne: 5 } }, e)).toBe(false)
    expect(passes({ n: { $ne: 6 } }, e)).toBe(true)
    expect(passes({ missing: { $ne: 5 } }, e)).toBe(true)
    expect(passes({ s: { $ne: 5 } }, e)).toBe(true)
    expect(passes({ none: { $ne: null } }, e)).toBe(false)
    expect(passes({ type: { $eq: "image" } }, e)).toBe(true)
    expect(passes({ type: { $ne: "IMAGE" } }, e)).toBe(false)
  })

  it("$gt $gte $lt $lte compare numbers as numbers", () => {
    expect(passes({ n: { $gt: 4 } }, e)).toBe(true)
    expect(passes({ n: { $gt: 5 } }, e)).toBe(false)
    expect(passes({ n: { $gte: 5 } }, e)).toBe(true)
    expect(passes({ n: { $lt: 10 } }, e)).toBe(true) // as text, "5" > "10"
    expect(passes({ n: { $lte: 4.5 } }, e)).toBe(false)
    expect(passes({ n: { $gt: 1, $lt: 6 } }, e)).toBe(true)
    expect(passes({ n: { $gt: 1, $lt: 5 } }, e)).toBe(false)
  })

  it("$gt $gte $lt $lte compare strings by code point, never across types", () => {
    expect(passes({ s: { $gt: "a" } }, e)).toBe(true)
    expect(passes({ s: { $gt: "Z" } }, e)).toBe(true) // code points: "Z" < "a"
    expect(passes({ s: { $lt: "ma" } }, e)).toBe(true)
    expect(passes({ s: { $gt: 1 } }, e)).toBe(false)
    expect(passes({ s: { $lt: 1 } }, e)).toBe(false)
    expect(passes({ n: { $lt: "z" } }, e)).toBe(false)
    expect(passes({ n: { $gt: "" } }, e)).toBe(false)
    for (const field of ["flag", "none", "list", "obj", "missing"]) {
      expect(passes({ [field]: { $gt: -1e300 } }, e)).toBe(false)
      expect(passes({ [field]: { $lt: "\u{10FFFF}" } }, e)).toBe(false)
    }
    // UTF-16 puts "\u{1F600}" (a surrogate pair) before "\uFFFD"; code points and UTF-8 put it after.
    expect(compareText("\u{1F600}", "\uFFFD")).toBeGreaterThan(0)
    expect(passes({ s: { $gt: "\uFFFD" } }, row({ s: "\u{1F600}" }))).toBe(true)
  })

  it("$in and $nin; $nin matches a missing field; $in [] matches nothing and $nin [] everything", () => {
    expect(passes({ n: { $in: [1, 5] } }, e)).toBe(true)
    expect(passes({ n: { $in: ["5"] } }, e)).toBe(false)
    expect(passes({ n: { $nin: [1, 5] } }, e)).toBe(false)
    expect(passes({ missing: { $nin: [1] } }, e)).toBe(true)
    expect(passes({ missing: { $in: [null] } }, e)).toBe(false)
    expect(passes({ none: { $in: [null] } }, e)).toBe(true)
    expect(passes({ type: { $in: ["chat", "IMAGE"] } }, e)).toBe(true)
    expect(passes({ n: { $in: [] } }, e)).toBe(false)
    expect(passes({ n: { $nin: [] } }, e)).toBe(true)
  })

  it("$exists: a field that is present, null included", () => {
    expect(passes({ none: { $exists: true } }, e)).toBe(true)
    expect(passes({ flag: { $exists: true } }, e)).toBe(true)
    expect(passes({ missing: { $exists: true } }, e)).toBe(false)
    expect(passes({ missing: { $exists: false } }, e)).toBe(true)
    expect(passes({ toString: { $exists: true } }, e)).toBe(false) // own fields only
  })

  it("$and, $or, $not", () => {
    expect(passes({ $and: [{ n: 5 }, { s: "m" }] }, e)).toBe(true)
    expect(passes({ $and: [{ n: 5 }, { s: "x" }] }, e)).toBe(false)
    expect(passes({ $or: [{ n: 6 }, { s: "m" }] }, e)).toBe(true)
    expect(passes({ $or: [{ n: 6 }, { s: "x" }] }, e)).toBe(false)
    expect(passes({ $not: { n: 5 } }, e)).toBe(false)
    expect(passes({ $not: { n: { $gt: 9 } } }, e)).toBe(true)
    expect(passes({ $not: { missing: { $gt: 9 } } }, e)).toBe(true)
    expect(passes({ n: 5, $or: [{ s: "x" }, { $not: { flag: true } }] }, e)).toBe(true)
  })

  it("$since and $until bound the entry time, since ≤ time < until, as epoch ms, ISO strings or Dates", () => {
    const at = row({}, "2024-01-01T00:00:10Z")
    for (const since of [T0 + 10_000, "2024-01-01T00:00:10Z", new Date(T0 + 10_000)]) expect(passes({ $since: since }, at)).toBe(true)
    expect(passes({ $since: T0 + 10_001 }, at)).toBe(false)
    expect(passes({ $until: T0 + 10_000 }, at)).toBe(false)
    expect(passes({ $until: "2024-01-01T00:00:11Z" }, at)).toBe(true)
    expect(passes({ $since: T0, $until: T0 + 20_000 }, at)).toBe(true)
    expect(passes({ $not: { $since: T0 + 10_000 } }, at)).toBe(false)
    expect(passes({ $since: T0 }, row({}, new Date(T0)))).toBe(true)
    expect(passes({ $since: 0 }, row({}, "not a time"))).toBe(false)
  })

  it("treats metadata that is not an object as having no fields", () => {
    const bare: StoreEntry = { text: "t", timestamp: T0, metadata: "text" }
    expect(passes({ length: 4 }, bare)).toBe(false)
    expect(passes({ length: { $exists: false } }, bare)).toBe(true)
  })
})

describe("normal form", () => {
  it("keys alike the filters that mean alike: key order, the case of \"image\", time formats", () => {
    const key = (where: unknown) => filterKey(Either.getOrThrow(parseFilter(where)))
    expect(key({ a: 1, b: 2 })).toBe(key({ b: 2, a: 1 }))
    expect(key({ type: "IMAGE" })).toBe(key({ type: "image" }))
    expect(key({ type: { $eq: "Image" } })).toBe(key({ type: "image" }))
    expect(key({ $since: "2024-01-01T00:00:00Z" })).toBe(key({ $since: new Date(T0) }))
    expect(key({ $since: T0 })).toBe(key({ $since: new Date(T0) }))
    expect(key({ a: 1 })).not.toBe(key({ a: "1" }))
    expect(key(undefined)).toBe(key({}))
  })
})

describe("bad filters fail with the path of what is wrong", () => {
  const cases: Array<[unknown, string, string]> = [
    [5, "where", "must be an object"],
    [null, "where", "must be an object"],
    [[{ a: 1 }], "where", "must be an object"],
    [{ a: { $regex: "x" } }, "where.a.$regex", "is not an operator"],
    [{ a: { b: 1 } }, "where.a.b", "is not an operator"],
    [{ a: {} }, "where.a", "at least one operator"],
    [{ $nor: [] }, "where.$nor", "is not an operator here"],
    [{ $gt: 5 }, "where.$gt", "is not an operator here"],
    [{ a: { $not: { $gt: 1 } } }, "where.a.$not", "negate a whole filter"],
    [{ a: [1, 2] }, "where.a", "must be a string, a finite number"],
    [{ a: new Date(0) }, "where.a", "must be a string, a finite number"],
    [{ a: undefined }, "where.a", "must be a string, a finite number"],
    [{ a: Number.NaN }, "where.a", "must be a string, a finite number"],
    [{ a: { $eq: { b: 1 } } }, "where.a.$eq", "must be a string, a finite number"],
    [{ a: { $gt: true } }, "where.a.$gt", "comparisons never cross types"],
    [{ a: { $lte: null } }, "where.a.$lte", "comparisons never cross types"],
    [{ a: { $gte: Infinity } }, "where.a.$gte", "comparisons never cross types"],
    [{ a: { $in: "x" } }, "where.a.$in", "must be an array"],
    [{ a: { $nin: [1, [2]] } }, "where.a.$nin[1]", "must be a string, a finite number"],
    [{ a: { $exists: 1 } }, "where.a.$exists", "must be true or false"],
    [{ $and: [] }, "where.$and", "non-empty array"],
    [{ $or: { a: 1 } }, "where.$or", "non-empty array"],
    [{ $and: [{ a: 1 }, { age: { $gt: "x", $foo: 1 } }] }, "where.$and[1].age.$foo", "is not an operator"],
    [{ $or: [{ a: 1 }, 7] }, "where.$or[1]", "must be an object"],
    [{ $not: "a" }, "where.$not", "must be an object"],
    [{ $since: "yesterday-ish" }, "where.$since", "epoch milliseconds"],
    [{ $until: true }, "where.$until", "epoch milliseconds"],
    [{ $since: 9e15 }, "where.$since", "epoch milliseconds"],
    [{ "": 1 }, "where.", "names no field"],
    [{ ["x".repeat(129)]: 1 }, `where.${"x".repeat(129)}`, "longer than 128"],
    [JSON.parse('{"__proto__": 1}'), "where.__proto__", "is not a metadata field"],
    [{ constructor: 1 }, "where.constructor", "is not a metadata field"],
    [{ prototype: { $exists: true } }, "where.prototype", "is not a metadata field"],
    [{ a: "nul\u0000" }, "where.a", "NUL"],
    [{ a: { $lt: "\uD800" } }, "where.a.$lt", "lone surrogates"]
  ]
  for (const [where, field, reason] of cases) {
    it(`${JSON.stringify(where) ?? String(where)} → ${field}`, () => {
      const error = refused(where)
      expect(error).toMatchObject({ _tag: "InvalidFilter", field })
      expect(error.reason).toContain(reason)
      expect(error.message).toContain(field)
    })
  }

  it(`refuses a filter nested deeper than ${MAX_FILTER_DEPTH} levels, naming where it goes too deep`, () => {
    let deep: unknown = { a: 1 }
    for (let i = 0; i < MAX_FILTER_DEPTH - 1; i++) deep = { $not: deep }
    expect(Either.isRight(parseFilter(deep))).toBe(true)
    const error = refused({ $and: [deep] })
    expect(error.field).toBe(`where.$and[0]${".$not".repeat(MAX_FILTER_DEPTH - 1)}`)
    expect(error.reason).toContain(`deeper than ${MAX_FILTER_DEPTH}`)
  })

  it("refuses a filter that refers to itself (depth, not a stack overflow)", () => {
    const cyclic: Record<string, unknown> = { a: 1 }
    cyclic.$and = [cyclic]
    expect(refused(cyclic).reason).toContain("deeper than")
  })

  it(`refuses more than ${MAX_FILTER_CONDITIONS} conditions, naming the first one too many`, () => {
    const fields = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`f${String(i).padStart(2, "0")}`, i]))
    expect(Either.isRight(parseFilter(fields(MAX_FILTER_CONDITIONS)))).toBe(true)
    expect(refused(fields(MAX_FILTER_CONDITIONS + 1)).reason).toContain(`at most ${MAX_FILTER_CONDITIONS}`)
    const spread = { $or: Array.from({ length: 40 }, (_, i) => ({ [`f${i}`]: 1 })) } // 40 elements + 40 fields
    const error = refused(spread)
    expect(error.field).toBe("where.$or[32]")
    expect(error.reason).toContain(`at most ${MAX_FILTER_CONDITIONS}`)
    expect(refused({ a: { $in: Array.from({ length: MAX_FILTER_LIST + 1 }, (_, i) => i) } }).field).toBe("where.a.$in")
  })

  it("a getter that throws is a refused filter, not a crash", () => {
    const hostile = Object.defineProperty({}, "a", { enumerable: true, get: () => { throw new Error("boom") } })
    expect(refused(hostile)).toMatchObject({ field: "where", reason: expect.stringContaining("boom") })
  })

  it("the compile refuses a bad source filter with InvalidCompileRequest naming its path", () => {
    const result = normalizeRequest({ sources: [{ id: "a" }, { id: "b", where: { $and: [{ a: 1 }, { age: { $gt: true } }] } }] })
    expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "InvalidCompileRequest", field: "sources[1].where.$and[1].age.$gt", value: true })
    const proto = normalizeRequest({ sources: [{ id: "a", where: JSON.parse('{"__proto__": {"polluted": true}}') }] })
    expect(Either.isLeft(proto) && proto.left.field).toBe("sources[0].where.__proto__")
    expect(Either.isRight(normalizeRequest({ sources: [{ id: "a", where: { age: { $gte: 18 }, $since: new Date(T0) } }] }))).toBe(true)
  })
})
