import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import { contentOf, type MessageParts } from "../src/domain/compile.js"
import { loadTokenCount } from "../src/domain/tokens.js"
import { makeTokenCounts } from "../src/services/tokenCounts.js"

type Parts = Pick<MessageParts, "speaker" | "said" | "time" | "body">

const said = (speaker: string, time: string, body: string): Parts => ({ speaker, said: " said (", time, body })
const alone = (body: string): Parts => ({ speaker: "", said: "", time: "", body })
const exact = (messages: ReadonlyArray<Parts>) => Effect.map(loadTokenCount, (count) => messages.map((m) => count(contentOf(m))))

describe("token counts kept under the message body", () => {
  it.scoped("a body shown again under another head is counted as the content it is now", () =>
    Effect.gen(function* () {
      const counts = yield* makeTokenCounts
      const body = "I went to the LGBTQ support group yesterday."
      const first = [said("Caroline", "2023-05-08T13:56:00.000Z", body)]
      // The same text, another speaker and another time format: a longer content.
      const later = [said("Melanie Rodriguez-Hernandez", "8 May 2023, 1:56 pm, a Monday", body)]
      expect(yield* counts(first)).toEqual(yield* exact(first))
      const now = yield* counts(later)
      expect(now).toEqual(yield* exact(later))
      expect(now[0]).toBeGreaterThan((yield* exact(first))[0]!)
      // And back: both heads are kept.
      expect(yield* counts(first)).toEqual(yield* exact(first))
    }))

  it.scoped("one body under several heads in one compile: each message is counted as its own content", () =>
    Effect.gen(function* () {
      const counts = yield* makeTokenCounts
      const messages = [
        said("Ann", "2024-01-01T00:00:00.000Z", "thanks"),
        alone("thanks"),
        said("Bartholomew Featherstonehaugh", "2024-01-02T00:00:00.000Z", "thanks"),
        said("Ann", "2024-01-01T00:00:00.000Z", "thanks"),
        // A blank speaker still has a head: " said (…): thanks" is not "thanks".
        said("", "2024-01-01T00:00:00.000Z", "thanks")
      ]
      const want = yield* exact(messages)
      expect(new Set(want).size).toBe(4)
      expect(yield* counts(messages)).toEqual(want)
      expect(yield* counts([...messages].reverse())).toEqual([...want].reverse())
    }))

  it.scoped("whatever the mix of repeated bodies and heads over many compiles, every count is exact", () =>
    Effect.gen(function* () {
      const counts = yield* makeTokenCounts
      const count = yield* loadTokenCount
      const message = fc.record({
        speaker: fc.constantFrom("", "Ann", "Bo", " "),
        said: fc.constantFrom("", " said (", " thought ("),
        time: fc.constantFrom("", "t1", "2024-01-01T00:00:00.000Z"),
        body: fc.constantFrom("thanks", " thanks", "hello world", "", "2024-01-01", "!!", "don't")
      })
      const compiles = fc.sample(fc.array(fc.array(message, { maxLength: 12 }), { minLength: 1, maxLength: 6 }), { numRuns: 60, seed: 7 })
      for (const run of compiles) {
        for (const messages of run) expect(yield* counts(messages)).toEqual(messages.map((m) => count(contentOf(m))))
      }
    }))
})
