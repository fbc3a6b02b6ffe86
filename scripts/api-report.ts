/**
 * The public API report: the declarations `tsc` emits for the package's entry points (src/index.ts,
 * and src/cli/index.ts for `pantheon-persistence/cli`), read by API Extractor into
 * api/pantheon-persistence.api.md and api/pantheon-persistence-cli.api.md (every export with its
 * signature). Two checks, on each:
 * - the report matches the committed one (a change to the public surface is seen in review);
 * - every type a public signature names is exported (API Extractor's `ae-forgotten-export`; the
 *   `X_base` consts that tsc emits for `class X extends Data.TaggedError(...)` are not types a
 *   consumer names, and are left out).
 *
 * `npm run api:update` writes the report after a deliberate change; `test/api.test.ts` runs the check.
 * Why API Extractor: docs/decisions/public-api.md.
 */
import { Extractor, ExtractorConfig, type ExtractorMessage } from "@microsoft/api-extractor"
import { execFile } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const reportFolder = join(root, "api")

/** The package's entry points: its declarations, and the name of its report. */
const ENTRY_POINTS = [
  { declarations: "index.d.ts", report: "pantheon-persistence" },
  { declarations: "cli/index.d.ts", report: "pantheon-persistence-cli" }
] as const

export interface ApiReport {
  /** The report as the sources give it today. */
  readonly report: string
  /** Whether it differs from the committed one (after `update`, whether it was rewritten). */
  readonly changed: boolean
  /** Types named by a public signature that the entry point does not export. */
  readonly forgotten: ReadonlyArray<string>
  /** The lines only the committed report has (`- `) and only today's has (`+ `). */
  readonly difference: ReadonlyArray<string>
}

const lineDifference = (before: string, after: string): Array<string> => {
  const a = new Set(before.split("\n"))
  const b = new Set(after.split("\n"))
  return [...[...a].filter((l) => !b.has(l)).map((l) => `- ${l}`), ...[...b].filter((l) => !a.has(l)).map((l) => `+ ${l}`)]
}

/** API Extractor over one entry point's declarations in `work`; with `update`, writes its report to api/. */
const extract = (work: string, packageJson: { readonly name: string; readonly version: string }, entry: (typeof ENTRY_POINTS)[number], update: boolean): ApiReport => {
  const reportPath = join(reportFolder, `${entry.report}.api.md`)
  const temp = join(work, "report")
  const config = ExtractorConfig.prepare({
    configObjectFullPath: undefined,
    packageJsonFullPath: join(work, "package.json"),
    packageJson,
    configObject: {
      projectFolder: work,
      mainEntryPointFilePath: join(work, "dist", entry.declarations),
      compiler: { overrideTsconfig: { compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, skipLibCheck: true, types: ["node"] }, files: [`dist/${entry.declarations}`] } },
      apiReport: { enabled: true, reportFolder, reportTempFolder: temp, reportFileName: entry.report },
      docModel: { enabled: false },
      dtsRollup: { enabled: false },
      tsdocMetadata: { enabled: false },
      messages: {
        compilerMessageReporting: { default: { logLevel: "warning" as never } },
        extractorMessageReporting: {
          default: { logLevel: "warning" as never },
          "ae-missing-release-tag": { logLevel: "none" as never },
          "ae-undocumented": { logLevel: "none" as never },
          "ae-forgotten-export": { logLevel: "warning" as never, addToApiReportFile: false }
        },
        tsdocMessageReporting: { default: { logLevel: "none" as never } }
      }
    }
  })
  const forgotten: Array<string> = []
  const other: Array<string> = []
  const result = Extractor.invoke(config, {
    localBuild: update,
    messageCallback: (message: ExtractorMessage) => {
      message.handled = true
      if (message.logLevel === "none") return
      if (message.messageId === "ae-forgotten-export") {
        const name = /The symbol "([^"]+)"/.exec(message.text)?.[1] ?? message.text
        if (!name.endsWith("_base")) forgotten.push(`${name} (${message.sourceFilePath?.replace(work, "")}:${message.sourceFileLine})`)
      } else if (!(message.messageId === "console-api-report-changed" || message.messageId.startsWith("console-"))) {
        other.push(`${message.messageId}: ${message.text}`)
      }
    }
  })
  if (other.length > 0) throw new Error(`API Extractor reported:\n${other.join("\n")}`)
  const committed = existsSync(reportPath) && !update ? readFileSync(reportPath, "utf8") : ""
  const fresh = join(temp, `${entry.report}.api.md`)
  const report = readFileSync(existsSync(fresh) ? fresh : reportPath, "utf8")
  return { report, changed: result.apiReportChanged, forgotten: [...new Set(forgotten)], difference: update ? [] : lineDifference(committed, report).map((line) => `${entry.report}: ${line}`) }
}

/** Builds the declarations and the reports; with `update`, writes them to api/. */
export const apiReport = async (options: { readonly update: boolean }): Promise<ApiReport> => {
  const work = mkdtempSync(join(tmpdir(), "pantheon-api-"))
  try {
    const tsc = join(root, "node_modules", "typescript", "bin", "tsc")
    await promisify(execFile)(process.execPath, [
      tsc, "-p", join(root, "tsconfig.build.json"), "--outDir", join(work, "dist"),
      "--emitDeclarationOnly", "--declarationMap", "false", "--sourceMap", "false", "--inlineSources", "false"
    ])
    // The declarations import effect & co.: the staging folder resolves them from this repository.
    symlinkSync(join(root, "node_modules"), join(work, "node_modules"))
    const packageJson = { name: "pantheon-persistence", version: "0.0.0", types: "dist/index.d.ts" }
    writeFileSync(join(work, "package.json"), JSON.stringify(packageJson))
    const reports = ENTRY_POINTS.map((entry) => extract(work, packageJson, entry, options.update))
    return {
      report: reports.map((r) => r.report).join("\n"),
      changed: reports.some((r) => r.changed),
      forgotten: [...new Set(reports.flatMap((r) => r.forgotten))],
      difference: reports.flatMap((r) => r.difference)
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const update = process.argv.includes("--update")
  const { changed, forgotten, difference } = await apiReport({ update })
  for (const name of forgotten) console.error(`not exported, but named by a public signature: ${name}`)
  if (update) console.log(changed ? `wrote the reports in ${reportFolder}` : `the reports in ${reportFolder} are up to date`)
  else if (changed) console.error(`the public API differs from the reports in ${reportFolder}:\n${difference.join("\n")}\nreview the change, then npm run api:update`)
  process.exitCode = forgotten.length > 0 || (!update && changed) ? 1 : 0
}
