/** Runs the command line as a child process, exactly as a user does. */
import { execFile } from "node:child_process"
import { join } from "node:path"

export const root = join(import.meta.dirname, "..", "..")

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

/** `pantheon-persistence ...args` from the sources. */
export const pantheon = (...args: Array<string>) => run(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args])
