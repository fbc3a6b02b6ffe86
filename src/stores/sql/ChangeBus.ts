/**
 * ChangeBus: how the instances that share one database tell each other what changed: a source
 * registered, changed or removed; a source's data written; an explicit invalidation. On PostgreSQL
 * it is LISTEN/NOTIFY on one channel; a listener that loses its connection reconnects and then
 * asks for a resync (re-read the catalog, drop what may have been missed). The embedded store has
 * one process, so its bus is local.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Context, Deferred, Duration, Effect, Layer, Option, PubSub, Redacted, Runtime, Schedule, Schema, Stream } from "effect"
import pg from "pg"
import type { CatalogChange } from "../../domain/schemas.js"

export type BusMessage =
  /** A catalog change (registration, label change, removal). */
  | { readonly kind: "catalog"; readonly change: CatalogChange }
  /** A source's entries were written: cached query results of it are stale. */
  | { readonly kind: "data"; readonly id: string }
  /** An explicit invalidation of one source's manager, or of all (`id: null`). */
  | { readonly kind: "invalidate"; readonly id: string | null }
  /** The listener was disconnected and is back: anything may have been missed. */
  | { readonly kind: "resync" }

export interface ChangeBusShape {
  /** Tells the other instances (never this one). */
  readonly publish: (message: BusMessage) => Effect.Effect<void>
  /** What the other instances said, and resyncs. */
  readonly messages: Stream.Stream<BusMessage>
  /** Whether the listener is connected (always true for a local bus). */
  readonly connected: Effect.Effect<boolean>
}

export class ChangeBus extends Context.Tag("pantheon-persistence/ChangeBus")<ChangeBus, ChangeBusShape>() {
  /** One process: nothing to tell anyone. */
  static readonly local: Layer.Layer<ChangeBus> = Layer.succeed(ChangeBus, {
    publish: () => Effect.void,
    messages: Stream.never,
    connected: Effect.succeed(true)
  })
}

const Wire = Schema.parseJson(
  Schema.Struct({
    origin: Schema.String,
    message: Schema.Union(
      Schema.Struct({ kind: Schema.Literal("data"), id: Schema.String }),
      Schema.Struct({ kind: Schema.Literal("invalidate"), id: Schema.NullOr(Schema.String) }),
      Schema.Struct({ kind: Schema.Literal("catalog"), change: Schema.Any })
    )
  })
)

export interface PgChangeBusOptions {
  readonly url: Redacted.Redacted
  /** The NOTIFY channel (default `pantheon_changes`); instances that share it see each other. */
  readonly channel?: string
  readonly applicationName?: string
  /** First and longest wait between reconnection attempts (default 100 ms and 5 s). */
  readonly reconnect?: { readonly initial?: Duration.DurationInput; readonly max?: Duration.DurationInput }
}

/**
 * LISTEN on a dedicated connection (the pool's connections stay free for queries), NOTIFY through
 * the pool with a bound parameter. Messages carry the sender's id so an instance ignores its own.
 */
export const makePg = (options: PgChangeBusOptions) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const channel = options.channel ?? "pantheon_changes"
    const origin = crypto.randomUUID()
    const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<BusMessage>(), PubSub.shutdown)
    const runtime = yield* Effect.runtime<never>()
    const state = { connected: false, sessions: 0 }

    const onPayload = (payload: string | undefined) => {
      const decoded = Schema.decodeUnknownOption(Wire)(payload ?? "")
      if (Option.isNone(decoded) || decoded.value.origin === origin) return
      Runtime.runFork(runtime)(PubSub.publish(pubsub, decoded.value.message as BusMessage))
    }

    /** One listening session: connect, LISTEN, then wait until the connection is lost. */
    const connect = Effect.acquireRelease(
      Effect.tryPromise(async () => {
        const client = new pg.Client({ connectionString: Redacted.value(options.url), application_name: options.applicationName, connectionTimeoutMillis: 5000 })
        client.on("error", () => {}) // surfaced through "end" below
        await client.connect()
        client.on("notification", (msg) => msg.channel === channel && onPayload(msg.payload))
        await client.query(`LISTEN ${client.escapeIdentifier(channel)}`)
        return client
      }),
      (client) => Effect.promise(() => client.end().catch(() => {})).pipe(Effect.timeoutOption("1 second"))
    )
    const session = (client: pg.Client) =>
      Effect.async<never, Error>((resume) => {
        const lost = (e?: Error) => resume(Effect.fail(e ?? new Error("listener connection ended")))
        client.once("end", () => lost())
        client.once("error", lost)
      })

    const up = yield* Deferred.make<void>()
    const listenOnce = Effect.scoped(
      Effect.flatMap(connect, (client) =>
        Effect.gen(function* () {
          state.connected = true
          yield* Deferred.succeed(up, undefined)
          if (state.sessions++ > 0) yield* PubSub.publish(pubsub, { kind: "resync" })
          return yield* session(client)
        }).pipe(Effect.ensuring(Effect.sync(() => void (state.connected = false))))
      )
    )
    const backoff = Schedule.exponential(options.reconnect?.initial ?? "100 millis").pipe(
      Schedule.either(Schedule.spaced(options.reconnect?.max ?? "5 seconds"))
    )
    yield* Effect.forkScoped(Effect.retry(listenOnce, backoff))
    // The first session is up before the layer is: no notification sent after it is built is missed.
    yield* Deferred.await(up).pipe(
      Effect.timeoutFail({
        duration: "10 seconds",
        onTimeout: () => new SqlError({ message: `the change listener could not LISTEN on ${channel} within 10 s`, cause: undefined })
      })
    )

    return {
      publish: (message: BusMessage) =>
        Effect.suspend(() => {
          if (message.kind === "resync") return Effect.void
          const payload = JSON.stringify({ origin, message })
          return sql`SELECT pg_notify(${channel}, ${payload})`
        }).pipe(
          Effect.asVoid,
          Effect.catchAll((e) => Effect.logWarning(`could not notify the other instances: ${e.message}`))
        ),
      messages: Stream.fromPubSub(pubsub),
      connected: Effect.sync(() => state.connected)
    } satisfies ChangeBusShape
  })

export const layerPg = (options: PgChangeBusOptions): Layer.Layer<ChangeBus, SqlError, SqlClient.SqlClient> => Layer.scoped(ChangeBus, makePg(options))
