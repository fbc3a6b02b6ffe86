/**
 * The runtime a Promise facade runs on: one `ManagedRuntime` over the facade's layers, calls that
 * reject with the typed failure itself (an `Error` with a `_tag`), aborts, and a lifetime that never
 * keeps the process alive on its own.
 *
 * - **Calls** reject with their failure as it is (`StoreUnavailable`, `InvalidCompileRequest`, …);
 *   a defect becomes an `UnexpectedError` that keeps it. A layer that fails to build rejects the
 *   call with the layer's error, and the next call builds it again (a data directory another process
 *   held may be free by then): Effect's `ManagedRuntime` would keep the failed build.
 * - **No open handle of its own**: the runtime's clock sets unref'd timers, so the background work
 *   (cache sweeps, refresh-ahead, warm reads) never keeps Node alive; while a call or `dispose`
 *   runs, one ref'd timer does, so nothing awaited is cut short. When nothing else is left, Node's
 *   `beforeExit` disposes the facade (closing what the layers hold) and the process exits.
 *   A handle that a layer holds open itself (a PostgreSQL server's sockets) is not covered: the
 *   README says which stores need `dispose()`.
 * - **dispose** ends the calls still running first (they reject with `AdapterDisposed`), then
 *   closes the layers; later calls reject with `AdapterDisposed`.
 */
import { Cause, Clock, Duration, Effect, Exit, type Fiber, FiberId, Layer, ManagedRuntime, Runtime } from "effect"
import { AdapterDisposed, UnexpectedError } from "../domain/errors.js"

/** Effect's timer scheduler, with timers that do not keep the process alive. */
const unrefScheduler: Clock.ClockScheduler = {
  unsafeSchedule: (task, duration) => {
    const millis = Duration.toMillis(duration)
    if (millis > MAX_TIMER_MILLIS) return () => false // as Effect's own: past what a timer can hold is never
    let done = false
    const timer = setTimeout(() => {
      done = true
      task()
    }, millis)
    timer.unref()
    return () => {
      clearTimeout(timer)
      return !done
    }
  }
}
const MAX_TIMER_MILLIS = 2 ** 31 - 1

/**
 * Effect's clock, whose `sleep` sets a timer that does not keep the process alive. It derives from
 * the live clock, so code that recognizes the live clock (`allWithin`'s plain deadline timer, set
 * and cleared within one call) still does.
 */
const unrefClock: Clock.Clock = Object.assign(Object.create(Clock.make()) as Clock.Clock, {
  scheduler: () => Effect.succeed(unrefScheduler),
  sleep: (duration: Duration.Duration) =>
    Effect.async<void>((resume) => {
      const cancel = unrefScheduler.unsafeSchedule(() => resume(Effect.void), duration)
      return Effect.sync(cancel)
    })
})

/** The error a failed call rejects with: the typed failure, or an `UnexpectedError` around a defect. */
const rejection = (operation: string, cause: Cause.Cause<unknown>): unknown => {
  const failure = Cause.failureOption(cause)
  if (failure._tag === "Some") return failure.value
  return new UnexpectedError({ operation, cause: Cause.squash(cause) })
}

/** The facades not yet disposed: disposed when the event loop is empty (one listener for all of them). */
const live = new Set<() => Promise<void>>()
const onBeforeExit = () => {
  for (const dispose of live) void dispose()
}

export interface FacadeRuntime<R> {
  /** Runs one call; `signal` aborts it (rejecting with the signal's reason). */
  readonly run: <A>(operation: string, effect: Effect.Effect<A, unknown, R>, signal?: AbortSignal) => Promise<A>
  readonly dispose: () => Promise<void>
}

export const makeFacadeRuntime = <R>(layer: Layer.Layer<R, unknown>): FacadeRuntime<R> => {
  const withClock = Layer.provide(layer, Layer.setClock(unrefClock))
  let runtime = ManagedRuntime.make(withClock)
  let disposed = false
  /** The calls still running, each on its own fiber, which dispose() interrupts. */
  const running = new Set<Fiber.RuntimeFiber<unknown, unknown>>()

  // One timer, ref'd while anything runs: a pending call is never cut short by the process exiting.
  let busy = 0
  let keepAlive: ReturnType<typeof setInterval> | undefined
  const hold = () => {
    keepAlive ??= setInterval(() => {}, 1 << 30)
    if (busy++ === 0) keepAlive.ref()
  }
  const release = () => {
    if (--busy === 0) keepAlive?.unref()
  }

  /** The built runtime; a failed build is given up, so that the next call builds again. */
  let ready: Exit.Exit<Runtime.Runtime<R>, unknown> | undefined
  const built = async (): Promise<Exit.Exit<Runtime.Runtime<R>, unknown>> => {
    if (ready !== undefined) return ready
    const current = runtime
    const exit = await Effect.runPromiseExit(current.runtimeEffect)
    if (Exit.isSuccess(exit)) ready = exit
    else if (runtime === current) {
      runtime = ManagedRuntime.make(withClock)
      await current.dispose().catch(() => {})
    }
    return exit
  }

  /** The builds of the runtime that calls await (dispose waits for them before it closes the layers). */
  const builds = new Set<Promise<unknown>>()
  const starting = <A>(build: Promise<A>): Promise<A> => {
    builds.add(build)
    return build.finally(() => builds.delete(build))
  }

  /** Runs the effect on its own fiber, kept in `running` until it ends; `signal` interrupts it. */
  const fork = <A>(rt: Runtime.Runtime<R>, effect: Effect.Effect<A, unknown, R>, signal?: AbortSignal): Promise<Exit.Exit<A, unknown>> =>
    new Promise((resolve) => {
      const fiber = Runtime.runFork(rt)(effect)
      running.add(fiber)
      fiber.addObserver((exit) => {
        running.delete(fiber)
        resolve(exit)
      })
      if (signal === undefined) return
      const onAbort = () => fiber.unsafeInterruptAsFork(FiberId.none)
      if (signal.aborted) return onAbort()
      signal.addEventListener("abort", onAbort, { once: true })
      fiber.addObserver(() => signal.removeEventListener("abort", onAbort))
    })

  const run = async <A>(operation: string, effect: Effect.Effect<A, unknown, R>, signal?: AbortSignal): Promise<A> => {
    if (disposed) throw new AdapterDisposed()
    hold()
    let exit: Exit.Exit<A, unknown>
    try {
      const rt = ready ?? (await starting(built()))
      // dispose() may have begun while the runtime was being built: the call never starts.
      exit = Exit.isFailure(rt) ? (rt as Exit.Exit<never, unknown>) : disposed ? Exit.interrupt(FiberId.none) : await fork(rt.value, effect, signal)
    } finally {
      release()
    }
    if (Exit.isSuccess(exit)) return exit.value
    if (signal?.aborted) throw signal.reason ?? new UnexpectedError({ operation, cause: "aborted" })
    // dispose() interrupted it: that is the caller's own doing, and says so.
    if (disposed && Cause.isInterruptedOnly(exit.cause)) throw new AdapterDisposed()
    throw rejection(operation, exit.cause)
  }

  const dispose = async () => {
    if (disposed) return
    disposed = true
    live.delete(dispose)
    if (live.size === 0) process.off("beforeExit", onBeforeExit)
    hold()
    try {
      // The calls still running end first (rejecting with AdapterDisposed), while the layers they use are still up.
      await Promise.allSettled([...builds])
      const calls = [...running]
      calls.forEach((fiber) => fiber.unsafeInterruptAsFork(FiberId.none))
      await Promise.all(calls.map((fiber) => new Promise((resolve) => fiber.addObserver(resolve))))
      await runtime.dispose()
    } finally {
      release()
      clearInterval(keepAlive)
    }
  }
  // The event loop is empty (only unref'd timers are left): close what the layers hold, then Node exits.
  if (live.size === 0) process.on("beforeExit", onBeforeExit)
  live.add(dispose)

  return { run, dispose }
}
