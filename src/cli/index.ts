/**
 * `pantheon-persistence/cli`: the command line as a value, for a program that embeds its commands
 * in an @effect/cli app of its own (the bin, main.ts, runs it). Needs the optional peers
 * @effect/cli and @effect/platform-node.
 */
export { command, CliError, UsageError } from "./commands.js"
export { describeFailure, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE } from "./report.js"
export { BIN, helpText } from "./help.js"
export { showsColor, showsProgress } from "./terminal.js"
// The errors `command` can fail with besides those two: the same classes as the main entry point's, and IngestError, the command line's own.
export * from "../domain/publicErrors.js"
export { IngestError } from "../domain/errors.js"
export type { TerminalStream } from "./terminal.js"
