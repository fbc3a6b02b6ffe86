/**
 * StoreEvents: the one path every change takes. Publishers (a registration, a write, an explicit
 * invalidation, a catalog re-read that found a difference) publish a `StoreEvent`; the registry,
 * the manager cache, the SQL result cache and warm managers subscribe to it.
 *
 * Delivery: `subscribe` handlers run in the publisher's fiber, in subscription order, before
 * `publish` returns, so a compile that sees a new catalog never gets a manager of the old one. A
 * handler that fails or dies is logged and the others still run. `layerLocal` serves one process;
 * a PostgreSQL implementation (`PgStoreEvents`) also tells the other instances on the database.
 */
import { Cause, Context, Effect, Layer, PubSub, type Scope, Stream } from "effect"
import type { StoreEvent } from "../domain/events.js"

export interface StoreEventsShape {
  /** To this instance's subscribers and, on a shared database, to every other instance. */
  readonly publish: (event: StoreEvent) => Effect.Effect<void>
  /** To this instance's subscribers only: something this instance found by itself (a catalog re-read). */
  readonly publishLocal: (event: StoreEvent) => Effect.Effect<void>
  /** Runs `handler` on every event, before `publish` returns, until the scope closes. */
  readonly subscribe: (handler: (event: StoreEvent) => Effect.Effect<void>) => Effect.Effect<void, never, Scope.Scope>
  /** Every event published from now on (subscribed when this runs), for observers: tests, a bench, a UI. */
  readonly stream: Effect.Effect<Stream.Stream<StoreEvent>, never, Scope.Scope>
  /** Whether events from the other instances reach this one (always true for one process). */
  readonly connected: Effect.Effect<boolean>
}

/** The in-process half every implementation shares: the handlers and the observers' stream. */
export const makeHub = Effect.gen(function* () {
  const handlers = new Set<(event: StoreEvent) => Effect.Effect<void>>()
  const observers = yield* Effect.acquireRelease(PubSub.unbounded<StoreEvent>(), PubSub.shutdown)
  const deliver = (event: StoreEvent): Effect.Effect<void> =>
    Effect.zipRight(
      Effect.forEach(
        [...handlers],
        (handler) =>
          Effect.catchAllCause(handler(event), (cause) =>
            Effect.logError(`a ${event._tag} event handler failed: ${Cause.pretty(cause)}`)
          ),
        { discard: true }
      ),
      PubSub.publish(observers, event)
    )
  return {
    deliver,
    subscribe: (handler: (event: StoreEvent) => Effect.Effect<void>) =>
      Effect.acquireRelease(
        Effect.sync(() => void handlers.add(handler)),
        () => Effect.sync(() => void handlers.delete(handler))
      ),
    stream: Stream.fromPubSub(observers, { scoped: true })
  }
})

export class StoreEvents extends Context.Tag("pantheon-persistence/StoreEvents")<StoreEvents, StoreEventsShape>() {
  /** One process: events reach this instance's subscribers only. */
  static readonly layerLocal: Layer.Layer<StoreEvents> = Layer.scoped(
    StoreEvents,
    Effect.map(makeHub, (hub) => ({
      publish: hub.deliver,
      publishLocal: hub.deliver,
      subscribe: hub.subscribe,
      stream: hub.stream,
      connected: Effect.succeed(true)
    }))
  )
}
