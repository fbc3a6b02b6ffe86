/**
 * The public API, as a consumer's compiler sees it: the reports of what src/index.ts and src/cli/index.ts export
 * (api/pantheon-persistence.api.md and api/pantheon-persistence-cli.api.md, from the emitted declarations) must match the committed ones, and
 * every type a public signature names must be exported. After a deliberate change: `npm run api:update`.
 */
import { describe, expect, it } from "vitest"
import { apiReport } from "../scripts/api-report.js"

describe("the public API", () => {
  it("is the reviewed one, and names no type a consumer cannot import", async () => {
    const { changed, forgotten, difference } = await apiReport({ update: false })
    expect(forgotten, "types named by public signatures but not exported").toEqual([])
    expect(changed, `the public API changed (review it, then run npm run api:update):\n${difference.join("\n")}`).toBe(false)
  }, 240_000)
})
