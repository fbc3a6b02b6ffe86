/**
 * Token counting for the compile's token budget and its `pantheon_compile_tokens` metric, with
 * `gpt-tokenizer` (its cl100k_base encoding, bundled in the package: nothing is downloaded). The
 * encoding (about 4 MB of tables, 0.25 s to load) is imported the first time it is needed, never
 * when the library is imported.
 */
import { Effect } from "effect"
import type { TokenCount } from "./compile.js"

/** The tokenizer's name, for docs and the bench. */
export const TOKENIZER = "gpt-tokenizer cl100k_base"

/** Loads the encoding once per process; every caller shares the one import. */
export const loadTokenCount: Effect.Effect<TokenCount> = Effect.promise(async () => {
  const { countTokens } = await import("gpt-tokenizer/encoding/cl100k_base")
  return (text: string) => countTokens(text)
}).pipe(Effect.cached, Effect.runSync)
