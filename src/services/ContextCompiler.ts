/**
 * ContextCompiler: `compile(request)` → chat messages, the algorithm of the README's
 * "Compile semantics" (the Pantheon adapter's, with its known bugs fixed).
 */
import { Cause, Context, Duration, Effect, Layer, Metric, Option } from "effect"
import { allWithin } from "../concurrency.js"
import {
  assemble,
  buildSeeds,
  combine,
  defaultResolvers,
  matcherOf,
  MESSAGE_OVERHEAD_TOKENS,
  withinTokens,
  normalizeRequest,
  type Resolvers
} from "../domain/compile.js"
import { type CompileError, errorReason, type LoadError, show, SourceFailed, StoreQueryError, UnexpectedError } from "../domain/errors.js"
import { type ContextSource, type Message, type NormalizedRequest, type StoreEntry, type Where } from "../domain/schemas.js"
import * as M from "../metrics.js"
import { CacheSettings } from "./CacheSettings.js"
import { ManagerCache } from "./ManagerCache.js"
import { SlowSources } from "./SlowSources.js"
import type { StoreManager } from "./StoreManager.js"
import { StoreManagerRegistry } from "./StoreManagerRegistry.js"
import { makeTokenCounts } from "./tokenCounts.js"

export type CompilerOptions = Partial<Resolvers>

export interface ContextCompilerShape {
  /**
   * Compiles the request (`{ texts?, sources, recentLimit?, queryLimit?, limit?, maxTokens?, onSourceError? }`).
   * The input is validated: a malformed one fails with `InvalidCompileRequest` naming the field.
   */
  readonly compile: (request: unknown) => Effect.Effect<Array<Message>, CompileError>
}

interface Matched {
  readonly source: ContextSource
  readonly manager: StoreManager
}

/** One store query of a compile: which source, which operation, the effect that asks. */
interface Query {
  readonly matched: Matched
  readonly operation: string
  readonly run: Effect.Effect<ReadonlyArray<StoreEntry>, StoreQueryError>
}

/** What one compile keeps track of as it goes. */
interface CompileState {
  readonly request: NormalizedRequest
  /** Sources already skipped (each is logged and counted once). */
  readonly skipped: Set<string>
  /** Entries dropped because they were not objects. */
  invalid: number
  /** Sources with a query past `queryTimeout`, with those queries' operations (told to `SlowSources`, which logs them once a streak). */
  readonly late: Map<string, Array<string>>
}

const succeeded = Metric.tagged(M.compileTotal, "outcome", "success")
const failed = Metric.tagged(M.compileTotal, "outcome", "failure")
const durationMs = Metric.mapInput(M.compileDuration, Duration.toMillis)

export const make = (options: CompilerOptions = {}) =>
  Effect.gen(function* () {
    const registry = yield* StoreManagerRegistry
    const cache = yield* ManagerCache
    const slow = yield* SlowSources
    const { queryTimeout, maxTokens: configuredMaxTokens } = yield* CacheSettings
    const resolvers: Resolvers = { ...defaultResolvers, ...options }
    const countTokens = yield* makeTokenCounts

    /** A source that failed: skipped and counted, or the compile's failure under `onSourceError: "fail"`. */
    const sourceFailed = (state: CompileState, sourceId: string, cause: LoadError | StoreQueryError) => {
      if (state.request.onSourceError === "fail") return Effect.fail(new SourceFailed({ sourceId, cause }))
      if (state.skipped.has(sourceId)) return Effect.void
      state.skipped.add(sourceId)
      // A late source is logged by SlowSources, once a streak rather than once a compile.
      if (state.late.has(sourceId)) return Metric.increment(M.compileSkippedSources)
      return Effect.zipRight(
        Metric.increment(M.compileSkippedSources),
        Effect.logWarning(`compile: skipping source ${sourceId}: ${cause.message}`)
      )
    }

    /**
     * What one store query of a compile answered: entries that are not objects are dropped and
     * counted; the source's filter is applied to what comes back too, so it holds for stores that
     * ignore it; any failure (a typed one, a defect, the deadline) is this source's
     * `StoreQueryError`: the source is skipped, or fails the compile.
     */
    const settle = (state: CompileState, { matched: { source }, operation }: Query, answer: Effect.Effect<ReadonlyArray<StoreEntry>, StoreQueryError>) =>
      answer.pipe(
        Effect.flatMap((entries: unknown) => {
          if (!Array.isArray(entries)) {
            return Effect.fail(new StoreQueryError({ id: source.id, operation, reason: `answered ${show(entries)}, expected an array of entries` }))
          }
          const usable = entries.filter((e): e is StoreEntry => e !== null && typeof e === "object" && !Array.isArray(e))
          state.invalid += entries.length - usable.length
          return Effect.succeed(source.where === undefined ? usable : usable.filter(matcherOf(source.where)))
        }),
        Effect.catchAllCause((cause): Effect.Effect<ReadonlyArray<StoreEntry>, SourceFailed> => {
          if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
          const failure = Cause.failureOption(cause)
          const error =
            failure._tag === "Some" && failure.value instanceof StoreQueryError
              ? failure.value
              : new StoreQueryError({ id: source.id, operation, reason: `failed unexpectedly: ${errorReason(Cause.squash(cause))}`, cause: Cause.squash(cause) })
          return Effect.as(sourceFailed(state, source.id, error), [])
        })
      )

    /**
     * Runs a round of queries concurrently under one deadline (one timer a round, not one a query):
     * a query still running at `queryTimeout` fails as `took longer than …`, and what the others
     * answered is kept. The late ones are told to `SlowSources` first (before a late query fails
     * the compile under `onSourceError: "fail"`).
     */
    const ask = (state: CompileState, queries: ReadonlyArray<Query>) =>
      Effect.flatMap(
        allWithin(queries.map((q) => settle(state, q, q.run)), queryTimeout),
        (answers) => {
          const lateNow = new Map<string, Array<string>>()
          queries.forEach((q, i) => {
            if (Option.isSome(answers[i]!)) return
            const id = q.matched.source.id
            lateNow.set(id, [...(lateNow.get(id) ?? []), q.operation])
          })
          for (const [id, operations] of lateNow) state.late.set(id, [...(state.late.get(id) ?? []), ...operations])
          return Effect.zipRight(
            Effect.forEach(lateNow, ([id, operations]) => slow.late(id, operations), { discard: true }),
            Effect.forEach(queries, (q, i) => {
              const answered = answers[i]!
              if (Option.isSome(answered)) return Effect.succeed(answered.value)
              const late = new StoreQueryError({ id: q.matched.source.id, operation: q.operation, reason: `took longer than ${Duration.format(queryTimeout)} (queryTimeout)` })
              return settle(state, q, Effect.fail(late))
            })
          )
        }
      )

    // Untraced, with the span added below: `Effect.fn` makes an `Error` on every call for its stack
    // (about 2 µs, a fiftieth of a repeated compile), whatever its `captureStackTrace` says.
    const compile = Effect.fnUntraced(function* (input: unknown) {
      const request = yield* normalizeRequest(input)
      if (request.sources.length === 0) return []
      const wanted = new Map<string, ContextSource>()
      for (const source of request.sources) if (!wanted.has(source.id)) wanted.set(source.id, source)

      // The matched managers, in catalog order, each once (two managers serving one id both match).
      const descriptors = (yield* registry.catalog).descriptors.filter((d) => wanted.has(d.id))
      yield* Effect.annotateCurrentSpan({ sources: request.sources.length, matched: descriptors.length })
      if (descriptors.length === 0) return []

      const state: CompileState = { request, skipped: new Set(), invalid: 0, late: new Map() }
      const loaded = yield* cache.getManagers(descriptors)
      const matched: Array<Matched> = []
      for (let i = 0; i < descriptors.length; i++) {
        const result = loaded[i]!
        const id = descriptors[i]!.id
        if (result._tag === "Right") matched.push({ source: wanted.get(id)!, manager: result.right })
        else yield* sourceFailed(state, id, result.left)
      }

      const recentBlocks = yield* ask(
        state,
        matched.map((m) => ({ matched: m, operation: "getMostRecent", run: m.manager.getMostRecent(request.recentLimit, m.source.where) }))
      )
      const seeds = buildSeeds(request.texts, recentBlocks.flat(), request.queryLimit)

      let relevant: Array<ReadonlyArray<StoreEntry>> = []
      let images: Array<ReadonlyArray<StoreEntry>> = []
      if (seeds.length > 0) {
        // A source that failed its recent query is not asked again in this compile (it would cost another deadline).
        const answering: Array<Matched & { readonly recent: ReadonlyArray<StoreEntry> }> = []
        matched.forEach((m, i) => {
          if (!state.skipped.has(m.source.id)) answering.push({ source: m.source, manager: m.manager, recent: recentBlocks[i]! })
        })
        // Our stores are told the question (the caller's texts lead; without them, the seeds) and the
        // recent block they already gave, which spends no relevance slot; the caller's managers get
        // the reference's call. The image query's own `type` is the store's to match (any case).
        const question = request.texts.length > 0 ? request.texts : seeds
        const relevanceOf = (m: (typeof answering)[number], where: Where | undefined) =>
          m.manager.findRelevant !== undefined
            ? m.manager.findRelevant({ question, limit: request.limit, where, exclude: m.recent.flatMap((e) => (typeof e.id === "string" ? [e.id] : [])) })
            : m.manager.getMostRelevant(seeds, request.limit, where)
        const blocks = yield* ask(
          state,
          answering.flatMap((m) => [
            { matched: m, operation: "getMostRelevant", run: relevanceOf(m, m.source.where) },
            { matched: m, operation: "getMostRelevant", run: relevanceOf(m, { ...m.source.where, type: "image" } satisfies Where) }
          ])
        )
        relevant = blocks.filter((_, i) => i % 2 === 0)
        images = blocks.filter((_, i) => i % 2 === 1)
      }

      // The sources that answered every query in time end their streak of late answers, if any.
      yield* Effect.forEach(matched, (m) => (state.late.has(m.source.id) ? Effect.void : slow.answered(m.source.id)), { discard: true })

      const resolverErrors: Array<string> = []
      const assembled = assemble(combine(relevant, recentBlocks, images, { questionFirst: request.texts.length > 0 }), {
        limit: request.limit,
        managers: matched.length,
        resolvers,
        onResolverError: (hook, error) => void resolverErrors.push(`${hook}: ${errorReason(error)}`)
      })
      const invalid = assembled.invalid
      const tokens = (yield* countTokens(assembled.parts)).map((n) => n + MESSAGE_OVERHEAD_TOKENS)
      const maxTokens = request.maxTokens ?? (configuredMaxTokens > 0 ? configuredMaxTokens : undefined)
      const budgeted = withinTokens(assembled, tokens, maxTokens)
      const messages = budgeted.messages
      yield* Metric.update(M.compileTokens, budgeted.tokens)
      if (resolverErrors.length > 0) {
        yield* Effect.logWarning(`compile: ${resolverErrors.length} resolver calls threw and fell back to defaults; first: ${resolverErrors[0]}`)
      }
      const skippedEntries = invalid + state.invalid
      if (skippedEntries > 0) {
        yield* Metric.incrementBy(M.compileInvalidEntries, skippedEntries)
        yield* Effect.logWarning(`compile: skipped ${skippedEntries} invalid entries (not an object, text or metadata of the wrong type, or a missing or unparseable timestamp)`)
      }
      return messages
    }, (effect) =>
      effect.pipe(
        // A bug is still a typed failure: nothing leaves compile untagged.
        Effect.catchAllDefect((defect) => Effect.fail(new UnexpectedError({ operation: "compile", cause: defect }))),
        Metric.trackDuration(durationMs),
        Effect.tapBoth({ onFailure: () => Metric.increment(failed), onSuccess: () => Metric.increment(succeeded) }),
        Effect.withSpan("ContextCompiler.compile", { captureStackTrace: false })
      ))

    return { compile } satisfies ContextCompilerShape
  })

export class ContextCompiler extends Context.Tag("pantheon-persistence/ContextCompiler")<ContextCompiler, ContextCompilerShape>() {
  static readonly layer = (options: CompilerOptions = {}): Layer.Layer<ContextCompiler, never, StoreManagerRegistry | ManagerCache | SlowSources | CacheSettings> =>
    Layer.scoped(ContextCompiler, make(options))
}
