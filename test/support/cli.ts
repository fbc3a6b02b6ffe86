/** Runs the command line as a child process, exactly as a user does. */
import { execFile } from "node:child_process"
import { existsSync, readdirSync, statSync } from "node:fs"
import { join } from "node:path"

export const root = join(import.meta.dirname, "..", "..")

/** The newest modification time of the files under `dir`. */
const newest = (dir: string): number =>
  Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs)))

/** How to run the command line: the built bin when it is newer than every source (CI builds first), else the sources through tsx (2 s more of CPU a process). */
export const cliEntry: ReadonlyArray<string> = (() => {
  const built = join(root, "dist", "cli", "main.js")
  return existsSync(built) && newest(join(root, "dist")) >= newest(join(root, "src")) ? [built] : ["--import", "tsx", "src/cli/main.ts"]
})()

export interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

export const run = (command: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  new Promise<Run>((resolve) => {
    execFile(command, args, { cwd: root, env: { ...process.env, ...env, NO_COLOR: "1" }, timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr })
    )
  })

/** `pantheon-persistence ...args`. */
export const pantheon = (...args: Array<string>) => run(process.execPath, [...cliEntry, ...args])
