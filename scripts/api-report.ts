/**
 * The public API report: the declarations `tsc` emits for src/index.ts, read by API Extractor into
 * api/pantheon-persistence.api.md (every export with its signature). Two checks:
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
export const reportPath = join(root, "api", "pantheon-persistence.api.md")

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

/** Builds the declarations and the report; with `update`, writes it to api/. */
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
    const temp = join(work, "report")
    const config = ExtractorConfig.prepare({
      configObjectFullPath: undefined,
      packageJsonFullPath: join(work, "package.json"),
      packageJson,
      configObject: {
        projectFolder: work,
        mainEntryPointFilePath: join(work, "dist", "index.d.ts"),
        compiler: { overrideTsconfig: { compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, skipLibCheck: true, types: ["node"] }, files: ["dist/index.d.ts"] } },
        apiReport: { enabled: true, reportFolder: dirname(reportPath), reportTempFolder: temp, reportFileName: "pantheon-persistence" },
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
      localBuild: options.update,
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
    const committed = existsSync(reportPath) && !options.update ? readFileSync(reportPath, "utf8") : ""
    const fresh = join(temp, "pantheon-persistence.api.md")
    const report = readFileSync(existsSync(fresh) ? fresh : reportPath, "utf8")
    return { report, changed: result.apiReportChanged, forgotten: [...new Set(forgotten)], difference: options.update ? [] : lineDifference(committed, report) }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const update = process.argv.includes("--update")
  const { changed, forgotten, difference } = await apiReport({ update })
  for (const name of forgotten) console.error(`not exported, but named by a public signature: ${name}`)
  if (update) console.log(changed ? `wrote ${reportPath}` : `${reportPath} is up to date`)
  else if (changed) console.error(`the public API differs from ${reportPath}:\n${difference.join("\n")}\nreview the change, then npm run api:update`)
  process.exitCode = forgotten.length > 0 || (!update && changed) ? 1 : 0
}
