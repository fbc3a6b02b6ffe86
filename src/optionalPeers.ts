/**
 * The optional peer dependencies: the packages of the command line and of the metrics endpoint,
 * which a library user who needs neither never installs nor loads (docs/decisions/packaging.md).
 * Each is loaded by a dynamic import when its feature is used; a missing one fails with
 * `MissingPackage`, which says what to install. The ranges are package.json's (a test checks).
 */
import { Effect } from "effect"
import { MissingPackage } from "./domain/errors.js"

export const optionalPeers = {
  "@effect/cli": "^0.77.2",
  "@effect/platform-node": "^0.108.2",
  "cli-progress": "^3.12.0",
  "@effect/opentelemetry": "^0.64.1",
  "@opentelemetry/exporter-prometheus": "0.223.0"
} as const

export type OptionalPeer = keyof typeof optionalPeers

/** The package a failed import could not find ("Cannot find package 'x' imported from ..."), if that was the failure. */
const missingPackage = (cause: unknown): string | undefined => {
  if (cause === null || typeof cause !== "object" || (cause as { code?: unknown }).code !== "ERR_MODULE_NOT_FOUND") return undefined
  return /Cannot find package '([^']+)'/.exec(String((cause as { message?: unknown }).message))?.[1]
}

/**
 * Runs `load` (the feature's dynamic imports). A package it cannot find fails with `MissingPackage`
 * naming the feature's peers to install; any other failure is a defect.
 */
export const importOptional = <A>(
  feature: string,
  peers: ReadonlyArray<OptionalPeer>,
  load: () => Promise<A>
): Effect.Effect<A, MissingPackage> =>
  Effect.tryPromise({ try: load, catch: (cause) => cause }).pipe(
    Effect.catchAll((cause) => {
      const missing = missingPackage(cause)
      return missing === undefined
        ? Effect.die(cause)
        : Effect.fail(new MissingPackage({ feature, missing, install: peers.map((p) => `${p}@${optionalPeers[p]}`) }))
    })
  )
