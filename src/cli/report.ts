/** What the command line prints when a command fails: always something, and one line unless asked for more. */
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as ValidationError from "@effect/cli/ValidationError"
import { Cause } from "effect"
import { stripVTControlCharacters } from "node:util"
import { errorReason } from "../domain/errors.js"
import { BIN } from "./help.js"

/** Exit codes: 1 for a failure, 2 for a command line that is not understood (as most CLIs), 130 for Ctrl-C. */
export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2
export const EXIT_INTERRUPTED = 130

/**
 * @effect/cli's explanation of bad arguments, as one plain line ("a integer" is its grammar, not
 * ours), led by the option whose value it refuses when the line shows it ("--limit: 'x' is not ...").
 */
const explain = (error: ValidationError.ValidationError, args: ReadonlyArray<string>): string => {
  const text = stripVTControlCharacters(HelpDoc.toAnsiText(error.error)).replace(/\s+/g, " ").replace(/\ba integer\b/g, "an integer").trim()
  const value = /^'(.*)' is not /.exec(text)?.[1]
  const option = value === undefined ? undefined : args[args.indexOf(value) - 1]
  return option !== undefined && option.startsWith("--") ? `${option}: ${text}` : text
}

const isUsageError = (error: unknown): boolean =>
  ValidationError.isValidationError(error) || (typeof error === "object" && error !== null && "_tag" in error && error._tag === "UsageError")

/**
 * The exit code and the lines for stderr: a typed failure is `error: <message>` (exit 1; 2 for bad
 * arguments, with a pointer to the help); an unexpected one (a defect) is `error: unexpected
 * failure: <message>`, with the whole cause after it under `--verbose`; an interruption (Ctrl-C)
 * says nothing and exits 130.
 */
export const describeFailure = (
  cause: Cause.Cause<unknown>,
  verbose: boolean,
  command = "",
  args: ReadonlyArray<string> = []
): { readonly exitCode: number; readonly lines: ReadonlyArray<string> } => {
  if (Cause.isInterruptedOnly(cause)) return { exitCode: EXIT_INTERRUPTED, lines: [] }
  const failure = Cause.failureOption(cause)
  if (failure._tag === "Some" && isUsageError(failure.value)) {
    const reason = ValidationError.isValidationError(failure.value) ? explain(failure.value, args) : errorReason(failure.value)
    return { exitCode: EXIT_USAGE, lines: [`error: ${reason} (see \`${[BIN, command, "--help"].filter((w) => w !== "").join(" ")}\`)`] }
  }
  const line =
    failure._tag === "Some"
      ? `error: ${errorReason(failure.value)}`
      : `error: unexpected failure: ${errorReason(Cause.squash(cause))}${verbose ? "" : " (--verbose shows the cause)"}`
  return { exitCode: EXIT_FAILURE, lines: [line.replace(/\s*\n\s*/g, " "), ...(verbose ? [Cause.pretty(cause)] : [])] }
}
