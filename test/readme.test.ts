import { Duration } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { fields } from "../src/domain/config.js"

const readme = readFileSync(join(import.meta.dirname, "..", "README.md"), "utf8")

describe("README configuration table", () => {
  it.each(Object.entries(fields))("documents %s with its env variable, default and the doc on its declaration", (name, field) => {
    const row = readme.split("\n").find((line) => line.startsWith(`| \`${name}\``))
    expect(row, `no README row for ${name}`).toBeDefined()
    expect(row).toContain(`\`${field.env}\``)
    const ms = Duration.isDuration(field.default) ? Duration.toMillis(field.default) : undefined
    const shown = ms === undefined ? String(field.default) : ms >= 120_000 && ms % 60_000 === 0 ? `${ms / 60_000} min` : `${ms / 1000} s`
    expect(row).toContain(`| ${shown} |`)
    expect(row).toContain(field.doc.replace(/ \(alias `maxSize`\)/, ""))
  })
})
