#!/usr/bin/env node
/**
 * The command line's entry point (the `pantheon-persistence` bin; `npm start` in this repository).
 * Whatever happens, it says what went wrong: a failure is one line on stderr with a non-zero exit
 * code; an unexpected one (a bug, a crash) too, with the whole cause under `--verbose`.
 */
import { Command } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { type Cause, Console, Effect, Exit, Logger, LogLevel } from "effect"
import { readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { command } from "./commands.js"
import { describeFailure } from "./report.js"

/** The package's version, read from its package.json (two levels up from src/cli and dist/cli alike). */
const VERSION = (JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), "..", "..", "package.json"), "utf8")) as { version: string }).version

/** `--verbose` may stand anywhere on the line; the commands never see it. */
const verbose = process.argv.includes("--verbose")
const argv = process.argv.filter((arg) => arg !== "--verbose")

const report = (cause: Cause.Cause<unknown>) =>
  Effect.gen(function* () {
    const { exitCode, lines } = describeFailure(cause, verbose)
    process.exitCode = exitCode
    for (const line of lines) yield* Console.error(line)
  })

const program = Effect.suspend(() => Command.run(command, { name: "pantheon-persistence", version: VERSION })(argv)).pipe(
  Effect.catchAllCause(report),
  Logger.withMinimumLogLevel(verbose ? LogLevel.Debug : LogLevel.Error),
  Effect.provide(NodeContext.layer)
)

// A signal ends the run with 128 + its number (runMain's own teardown says 0 for an interruption), and any failure exits at once.
let signalled: number | undefined
process.once("SIGINT", () => (signalled ??= 130)).once("SIGTERM", () => (signalled ??= 143))
const teardown = (exit: Exit.Exit<unknown, unknown>, onExit: (code: number) => void) =>
  onExit(signalled ?? (Number(process.exitCode ?? 0) || (Exit.isFailure(exit) ? 1 : 0)))

NodeRuntime.runMain(program, { disableErrorReporting: true, disablePrettyLogger: true, teardown })
