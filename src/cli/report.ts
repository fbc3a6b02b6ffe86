/** What the command line prints when a command fails: always something, and one line unless asked for more. */
import { ValidationError } from "@effect/cli"
import { Cause } from "effect"
import { errorReason } from "../domain/errors.js"

/**
 * The exit code and the lines for stderr: a typed failure is `error: <message>`; an unexpected one
 * (a defect) is `error: unexpected failure: <message>`, with the whole cause after it under
 * `--verbose`; bad arguments were already explained by @effect/cli; an interruption (Ctrl-C) says
 * nothing and exits 130.
 */
export const describeFailure = (cause: Cause.Cause<unknown>, verbose: boolean): { readonly exitCode: number; readonly lines: ReadonlyArray<string> } => {
  if (Cause.isInterruptedOnly(cause)) return { exitCode: 130, lines: [] }
  const failure = Cause.failureOption(cause)
  if (failure._tag === "Some" && ValidationError.isValidationError(failure.value)) return { exitCode: 1, lines: [] }
  const line =
    failure._tag === "Some"
      ? `error: ${errorReason(failure.value)}`
      : `error: unexpected failure: ${errorReason(Cause.squash(cause))}${verbose ? "" : " (--verbose shows the cause)"}`
  return { exitCode: 1, lines: [line.replace(/\s*\n\s*/g, " "), ...(verbose ? [Cause.pretty(cause)] : [])] }
}
