#!/usr/bin/env node
/**
 * The command line's entry point (the `pantheon-persistence` bin; `npm start` in this repository).
 * Whatever happens, it says what went wrong: a failure is one line on stderr starting `error: `,
 * exit code 1 (2 when the command line is not understood); an unexpected one (a bug, a crash) too,
 * with the whole cause under `--verbose`. `--help` is this project's own plain text (help.ts).
 * Its packages (@effect/cli, @effect/platform-node) are optional peer dependencies of the library:
 * without them it says what to install.
 */
import { type Cause, Console, Effect, Either, Exit, Logger, LogLevel } from "effect"
import { readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { importOptional } from "../optionalPeers.js"
import { BIN, commandOf, helpText } from "./help.js"
import { verbose, withoutGlobalFlags } from "./terminal.js"

/** The package's version, read from its package.json (two levels up from src/cli and dist/cli alike). */
const VERSION = (JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), "..", "..", "package.json"), "utf8")) as { version: string }).version

const argv = withoutGlobalFlags(process.argv)
const args = argv.slice(2)
const subcommand = commandOf(args)

const cli = importOptional("the command line", ["@effect/cli", "@effect/platform-node", "cli-progress"], () =>
  Promise.all([
    import("@effect/cli/Command"),
    import("@effect/platform-node/NodeContext"),
    import("@effect/platform-node/NodeRuntime"),
    import("./commands.js"),
    import("./report.js")
  ])
)

// A signal ends the run with 128 + its number (runMain's own teardown says 0 for an interruption), and any failure exits at once.
let signalled: number | undefined
process.once("SIGINT", () => (signalled ??= 130)).once("SIGTERM", () => (signalled ??= 143))
const teardown = (exit: Exit.Exit<unknown, unknown>, onExit: (code: number) => void) =>
  onExit(signalled ?? (Number(process.exitCode ?? 0) || (Exit.isFailure(exit) ? 1 : 0)))

const main = async () => {
  // Help and version need none of the optional peers.
  if (args.includes("--help") || args.includes("-h")) return void process.stdout.write(helpText(VERSION, subcommand)!)
  if (args.includes("--version")) return void process.stdout.write(`${VERSION}\n`)
  const loaded = await Effect.runPromise(Effect.either(cli))
  if (Either.isLeft(loaded)) {
    process.stderr.write(`error: ${loaded.left.message}\n`)
    process.exitCode = 1
    return
  }
  const [Command, NodeContext, NodeRuntime, { command }, { describeFailure }] = loaded.right

  const report = (cause: Cause.Cause<unknown>) =>
    Effect.gen(function* () {
      const { exitCode, lines } = describeFailure(cause, verbose, subcommand, args)
      process.exitCode = exitCode
      for (const line of lines) yield* Console.error(line)
    })

  // @effect/cli writes its own account of bad arguments (with escape codes) to Console.error before
  // failing; report() says it in one plain line instead. The commands get the real console back.
  const program = Effect.consoleWith((console) => {
    const parserConsole = { ...console, error: () => Effect.void, unsafe: { ...console.unsafe, error: () => {} } }
    const run = Command.run(
      command.pipe(Command.transformHandler((effect) => Effect.withConsole(effect, console))),
      { name: BIN, version: VERSION, executable: BIN }
    )
    return Effect.withConsole(Effect.suspend(() => run(argv)), parserConsole)
  }).pipe(
    Effect.catchAllCause(report),
    Logger.withMinimumLogLevel(verbose ? LogLevel.Debug : LogLevel.Error),
    Effect.provide(NodeContext.layer)
  )

  NodeRuntime.runMain(program, { disableErrorReporting: true, disablePrettyLogger: true, teardown })
}

await main()
