/**
 * ContextCompiler: `compile(request)` → chat messages, the algorithm of the README's
 * "Compile semantics" (the Pantheon adapter's, with its known bugs fixed).
 */
import { Cause, Context, Duration, Effect, Exit, Fiber, Layer, Metric } from "effect"
import {
  assemble,
  buildSeeds,
  combine,
  defaultResolvers,
  matchesWhere,
  normalizeRequest,
  type Resolvers
} from "../domain/compile.js"
import { type CompileError, type LoadError, SourceFailed, StoreQueryError } from "../domain/errors.js"
import type { ContextSource, Message, NormalizedRequest, StoreEntry, Where } from "../domain/schemas.js"
import * as M from "../metrics.js"
import { managerKey } from "../domain/schemas.js"
import { ManagerCache } from "./ManagerCache.js"
import type { StoreManager } from "./StoreManager.js"
import { StoreManagerRegistry } from "./StoreManagerRegistry.js"

export type CompilerOptions = Partial<Resolvers>

export interface ContextCompilerShape {
  /**
   * Compiles the request (`{ texts?, sources, recentLimit?, queryLimit?, limit?, onSourceError? }`).
   * The input is validated: a malformed one fails with `InvalidCompileRequest` naming the field.
   */
  readonly compile: (request: unknown) => Effect.Effect<Array<Message>, CompileError>
}

interface Matched {
  readonly source: ContextSource
  readonly manager: StoreManager
}

const succeeded = Metric.tagged(M.compileTotal, "outcome", "success")
const failed = Metric.tagged(M.compileTotal, "outcome", "failure")
const durationMs = Metric.mapInput(M.compileDuration, Duration.toMillis)

/**
 * Runs the effects concurrently: all but the first in forked fibers, the first on this fiber, so one
 * effect forks nothing (measured on effect 3.22: `Effect.all` with unbounded concurrency costs about
 * twice as much per effect). A failure interrupts the others.
 */
const allConcurrently = <A, E>(effects: ReadonlyArray<Effect.Effect<A, E>>): Effect.Effect<Array<A>, E> => {
  if (effects.length <= 1) return Effect.all(effects)
  return Effect.flatMap(Effect.forEach(effects.slice(1), (e) => Effect.fork(e)), (fibers) =>
    Effect.gen(function* () {
      const results = [yield* effects[0]!]
      for (const fiber of fibers) results.push(yield* Fiber.join(fiber))
      return results
    }).pipe(Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : Fiber.interruptAll(fibers))))
  )
}

const forEachConcurrently = <A, B, E>(items: ReadonlyArray<A>, f: (a: A) => Effect.Effect<B, E>) => allConcurrently(items.map(f))

export const make = (options: CompilerOptions = {}) =>
  Effect.gen(function* () {
    const registry = yield* StoreManagerRegistry
    const cache = yield* ManagerCache
    const resolvers: Resolvers = { ...defaultResolvers, ...options }

    /** A source that failed: skipped and counted, or the compile's failure under `onSourceError: "fail"`. */
    const sourceFailed = (request: NormalizedRequest, skipped: Set<string>, sourceId: string, cause: LoadError | StoreQueryError) => {
      if (request.onSourceError === "fail") return Effect.fail(new SourceFailed({ sourceId, cause }))
      if (skipped.has(sourceId)) return Effect.void
      skipped.add(sourceId)
      return Effect.zipRight(
        Metric.increment(M.compileSkippedSources),
        Effect.logWarning(`compile: skipping source ${sourceId}: ${cause.message}`)
      )
    }

    const query = (
      request: NormalizedRequest,
      skipped: Set<string>,
      { source }: Matched,
      operation: string,
      run: Effect.Effect<ReadonlyArray<StoreEntry>, StoreQueryError>
    ): Effect.Effect<ReadonlyArray<StoreEntry>, SourceFailed> =>
      run.pipe(
        // The source's filter is applied to what comes back too, so it holds for stores that ignore it.
        Effect.map((entries) => (source.where === undefined ? entries : entries.filter((e) => matchesWhere(e, source.where)))),
        Effect.catchAllCause((cause) => {
          if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
          const failure = Cause.failureOption(cause)
          const error =
            failure._tag === "Some"
              ? failure.value
              : new StoreQueryError({ id: source.id, operation, reason: Cause.pretty(cause), cause: Cause.squash(cause) })
          return Effect.as(sourceFailed(request, skipped, source.id, error), [])
        })
      )

    const compile = Effect.fn("ContextCompiler.compile")(function* (input: unknown) {
      const request = yield* normalizeRequest(input)
      if (request.sources.length === 0) return []
      const wanted = new Map<string, ContextSource>()
      for (const source of request.sources) if (!wanted.has(source.id)) wanted.set(source.id, source)

      // The matched managers, in catalog order, each once (two managers serving one id both match).
      const descriptors = (yield* registry.catalog).filter((d) => wanted.has(d.id))
      yield* Effect.annotateCurrentSpan({ sources: request.sources.length, matched: descriptors.length })
      if (descriptors.length === 0) return []

      const skipped = new Set<string>()
      const loaded = yield* cache.getMany(descriptors.map(managerKey))
      const matched: Array<Matched> = []
      for (let i = 0; i < descriptors.length; i++) {
        const result = loaded[i]!
        const id = descriptors[i]!.id
        if (result._tag === "Right") matched.push({ source: wanted.get(id)!, manager: result.right })
        else yield* sourceFailed(request, skipped, id, result.left)
      }

      const recentBlocks = yield* forEachConcurrently(matched, (m) =>
        query(request, skipped, m, "getMostRecent", m.manager.getMostRecent(request.recentLimit, m.source.where))
      )
      const recent = recentBlocks.flat()
      const seeds = buildSeeds(request.texts, recent, request.queryLimit)

      let relevant: Array<StoreEntry> = []
      let images: Array<StoreEntry> = []
      if (seeds.length > 0) {
        const blocks = yield* forEachConcurrently(matched, (m) => {
          // The image query's own `type` is the store's to match (case-insensitively): only the source's filter is re-applied.
          const imageWhere: Where = { ...m.source.where, type: "image" }
          return allConcurrently([
            query(request, skipped, m, "getMostRelevant", m.manager.getMostRelevant(seeds, request.limit, m.source.where)),
            query(request, skipped, m, "getMostRelevant", m.manager.getMostRelevant(seeds, request.limit, imageWhere))
          ])
        })
        relevant = blocks.flatMap(([text]) => text!)
        images = blocks.flatMap(([, image]) => image!)
      }

      const resolverErrors: Array<string> = []
      const { messages, invalidTimestamps } = assemble(combine(relevant, recent, images), {
        limit: request.limit,
        managers: matched.length,
        resolvers,
        onResolverError: (hook, error) => void resolverErrors.push(`${hook}: ${error instanceof Error ? error.message : String(error)}`)
      })
      if (resolverErrors.length > 0) {
        yield* Effect.logWarning(`compile: ${resolverErrors.length} resolver calls threw and fell back to defaults; first: ${resolverErrors[0]}`)
      }
      if (invalidTimestamps > 0) {
        yield* Metric.incrementBy(M.compileInvalidEntries, invalidTimestamps)
        yield* Effect.logWarning(`compile: skipped ${invalidTimestamps} entries with a missing or unparseable timestamp`)
      }
      return messages
    }, (effect) =>
      effect.pipe(
        Metric.trackDuration(durationMs),
        Effect.tapBoth({ onFailure: () => Metric.increment(failed), onSuccess: () => Metric.increment(succeeded) })
      ))

    return { compile } satisfies ContextCompilerShape
  })

export class ContextCompiler extends Context.Tag("pantheon-persistence/ContextCompiler")<ContextCompiler, ContextCompilerShape>() {
  static readonly layer = (options: CompilerOptions = {}): Layer.Layer<ContextCompiler, never, StoreManagerRegistry | ManagerCache> =>
    Layer.effect(ContextCompiler, make(options))
}
