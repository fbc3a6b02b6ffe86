/**
 * Removal notices: every value that leaves the cache is reported once to the cache's `onRemoval`
 * listener with its cause, as Caffeine's `RemovalListener` and `RemovalCause` (and lru-cache's
 * `dispose`). The listener runs in a fiber of the cache after the request that caused the removal
 * has been answered (never on the request path), one notice at a time in the order of removal; a
 * listener that fails or throws is logged and the next notice still runs.
 */
import { Cause, Effect } from "effect"

/**
 * Why a value left: `evicted` for size or weight (including a value too heavy to keep), `expired`
 * past its time to live (and stale-if-error), `invalidated` by `invalidate*` (or a load that ended
 * after its entry was invalidated), `replaced` by `set` or a reload with a different value.
 */
export type RemovalCause = "evicted" | "expired" | "invalidated" | "replaced"

export type RemovalListener<K, V, R = never> = (key: K, value: V, cause: RemovalCause) => Effect.Effect<void, unknown, R>

export class RemovalQueue<K, V> {
  private pending: Array<{ readonly key: K; readonly value: V; readonly cause: RemovalCause }> = []
  private draining = false

  /** `fork` runs an effect in a fiber of the cache (its runtime, interrupted when the cache closes). */
  constructor(
    private readonly listener: RemovalListener<K, V, any>,
    private readonly fork: (effect: Effect.Effect<void>) => void,
    private readonly label: string
  ) {}

  push(key: K, value: V, cause: RemovalCause): void {
    this.pending.push({ key, value, cause })
    if (this.draining) return
    this.draining = true
    // Forking runs the fiber at once up to its first yield: yielding first lets the request end.
    this.fork(Effect.zipRight(Effect.yieldNow(), this.drain))
  }

  private readonly drain: Effect.Effect<void> = Effect.suspend(() => {
    const batch = this.pending
    this.pending = []
    if (batch.length === 0) {
      this.draining = false
      return Effect.void
    }
    return Effect.zipRight(
      Effect.forEach(batch, ({ key, value, cause }) => this.notify(key, value, cause), { discard: true }),
      this.drain
    )
  })

  private notify(key: K, value: V, cause: RemovalCause): Effect.Effect<void> {
    return Effect.suspend(() => this.listener(key, value, cause) as Effect.Effect<void, unknown>).pipe(
      Effect.catchAllCause((failure) =>
        Effect.logWarning(`cache ${this.label}: the removal listener failed for ${String(key)} (${cause}): ${Cause.pretty(failure)}`)
      ),
      Effect.asVoid
    )
  }
}
