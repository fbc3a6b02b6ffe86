/**
 * The command line always says what went wrong: one line on stderr and a non-zero exit, for a
 * failure it knows and for one it did not expect (with the whole cause under --verbose).
 */
import { Cause, FiberId } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { StoreQueryError } from "../../src/domain/errors.js"
import { describeFailure } from "../../src/cli/report.js"
import { pantheon } from "../support/cli.js"

const dir = mkdtempSync(join(tmpdir(), "pantheon-cli-faults-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("what the CLI prints on failure", () => {
  it("metadata nested 10,000 deep: one line naming the file and line, non-zero exit (it used to exit 1 saying nothing)", async () => {
    const file = join(dir, "deep.jsonl")
    writeFileSync(file, `{"id":"d1","text":"deep","timestamp":1,"metadata":${'{"a":'.repeat(10_000)}{}${"}".repeat(10_000)}}\n`)
    const r = await pantheon("ingest", file, "--source", "deep", "--data-dir", "memory://")
    expect(r.code).not.toBe(0)
    expect(r.stderr.trim().split("\n")).toHaveLength(1)
    expect(r.stderr).toMatch(/^error: .*deep\.jsonl:1: cannot be stored: Maximum call stack size exceeded/)
  }, 60_000)

  it("an unexpected failure is one line, with the cause under --verbose", () => {
    const crash = Cause.die(new RangeError("Maximum call stack size exceeded"))
    expect(describeFailure(crash, false)).toEqual({ exitCode: 1, lines: ["error: unexpected failure: Maximum call stack size exceeded (--verbose shows the cause)"] })
    const verbose = describeFailure(crash, true)
    expect(verbose.lines[0]).toBe("error: unexpected failure: Maximum call stack size exceeded")
    expect(verbose.lines[1]).toContain("RangeError: Maximum call stack size exceeded")
  })

  it("a typed failure is its message on one line; an interruption says nothing", () => {
    const failed = Cause.fail(new StoreQueryError({ id: "chat", operation: "getMostRecent", reason: "connection lost\nretry later" }))
    expect(describeFailure(failed, false)).toEqual({ exitCode: 1, lines: ['error: Store "chat": getMostRecent failed: connection lost retry later'] })
    expect(describeFailure(Cause.interrupt(FiberId.none), false)).toEqual({ exitCode: 130, lines: [] })
  })
})
