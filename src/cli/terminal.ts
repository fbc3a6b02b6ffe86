/**
 * What the command line may draw, decided once from the command line and the environment: the
 * flags that stand anywhere on the line (`--verbose`, `--quiet`; the commands never see them) and
 * whether a stream is a terminal that takes progress or colour. Long work (ingest) asks
 * `showsProgress(process.stderr)` before drawing anything.
 */

/** The flags any command takes, wherever they stand. */
export const globalFlags = ["--verbose", "--quiet"] as const

/** `--verbose`: a failure prints its whole cause, and debug logs are shown. */
export const verbose = process.argv.includes("--verbose")

/** `--quiet`: long work prints only its final line. */
export const quiet = process.argv.includes("--quiet")

/** The command line without the global flags, for the parser. */
export const withoutGlobalFlags = (argv: ReadonlyArray<string>): Array<string> =>
  argv.filter((arg) => !(globalFlags as ReadonlyArray<string>).includes(arg))

/** What `showsProgress` and `showsColor` read of an output stream (`process.stdout`, `process.stderr`). */
export interface TerminalStream {
  readonly isTTY?: boolean
}

/** A terminal that can take escape codes (not a pipe, not a file, not TERM=dumb). */
const isTerminal = (stream: TerminalStream) => stream.isTTY === true && process.env.TERM !== "dumb"

/** Live progress (redrawn lines) on `stream`: on a terminal, unless `--quiet`. */
export const showsProgress = (stream: TerminalStream): boolean => isTerminal(stream) && !quiet

/** Colour on `stream`: on a terminal, unless NO_COLOR is set to anything (no-color.org). */
export const showsColor = (stream: TerminalStream): boolean => isTerminal(stream) && (process.env.NO_COLOR ?? "") === ""
