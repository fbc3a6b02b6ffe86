/**
 * `StoreEvents` across the instances that share one PostgreSQL database: every event published
 * here reaches this instance's subscribers and, by NOTIFY on one channel, every other instance's.
 *
 * - LISTEN runs on a dedicated connection (the pool's connections stay free for queries); NOTIFY
 *   goes through the pool with bound parameters. Messages carry the sender's id, so an instance
 *   ignores its own.
 * - What arrives is decoded with the `StoreEvent` schema; a malformed payload is logged and dropped.
 * - A listener that loses its connection reconnects with back-off and then publishes `Resync`
 *   locally (drop what may have been missed: the catalog, the managers, the cached results).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Deferred, Duration, Effect, Either, Layer, ParseResult, Redacted, Runtime, Schedule, Schema } from "effect"
import type pg from "pg"
import { ListenerUnavailable } from "../../domain/errors.js"
import { Resync, StoreEvent } from "../../domain/events.js"
import { makeHub, StoreEvents, type StoreEventsShape } from "../../services/StoreEvents.js"

export interface PgStoreEventsOptions {
  readonly url: Redacted.Redacted
  /** The NOTIFY channel (default `pantheon_changes`); instances that share it see each other. */
  readonly channel?: string
  readonly applicationName?: string
  /** First and longest wait between reconnection attempts (default 100 ms and 5 s). */
  readonly reconnect?: { readonly initial?: Duration.DurationInput; readonly max?: Duration.DurationInput }
}

const Message = Schema.parseJson(Schema.Struct({ origin: Schema.String, event: StoreEvent }))
const decodeMessage = Schema.decodeUnknownEither(Message)
const encodeMessage = Schema.encodeSync(Message)

export const make = (options: PgStoreEventsOptions) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const hub = yield* makeHub
    const channel = options.channel ?? "pantheon_changes"
    const origin = crypto.randomUUID()
    const runtime = yield* Effect.runtime<never>()
    const state = { connected: false, sessions: 0 }

    const onPayload = (payload: string | undefined) => {
      const decoded = decodeMessage(payload ?? "")
      if (Either.isLeft(decoded)) {
        Runtime.runFork(runtime)(
          Effect.logWarning(`dropped a malformed change notification on ${channel}: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}`)
        )
        return
      }
      if (decoded.right.origin !== origin) Runtime.runFork(runtime)(hub.deliver(decoded.right.event))
    }

    /** One listening session: connect, LISTEN, then wait until the connection is lost. */
    const connect = Effect.acquireRelease(
      Effect.tryPromise(async () => {
        const { default: pg } = await import("pg") // at the first connection, not at the package's import
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
          if (state.sessions++ > 0) yield* hub.deliver(Resync.make({}))
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
        onTimeout: () => new ListenerUnavailable({ channel, reason: "no session was up within 10 s" })
      })
    )

    const notify = (event: StoreEvent) =>
      sql`SELECT pg_notify(${channel}, ${encodeMessage({ origin, event })})`.pipe(
        Effect.asVoid,
        Effect.catchAll((e) => Effect.logWarning(`could not tell the other instances of ${event._tag} ${"id" in event ? event.id : ""}: ${e.message}`))
      )

    return {
      publish: (event) => Effect.zipRight(hub.deliver(event), event._tag === "Resync" ? Effect.void : notify(event)),
      publishLocal: hub.deliver,
      subscribe: hub.subscribe,
      stream: hub.stream,
      connected: Effect.sync(() => state.connected)
    } satisfies StoreEventsShape
  })

/** `StoreEvents` over LISTEN/NOTIFY on the database of the `SqlClient`. */
export const layer = (options: PgStoreEventsOptions): Layer.Layer<StoreEvents, ListenerUnavailable, SqlClient.SqlClient> => Layer.scoped(StoreEvents, make(options))
