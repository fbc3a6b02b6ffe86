/**
 * PGlite on a worker thread, seen from the main thread: `start` runs one worker
 * (`pgliteWorker.ts`) that owns the instance, and the returned database forwards `query`, `exec`
 * and `close` to it (`pgliteProtocol.ts`). PGlite's work never holds this thread's event loop.
 *
 * - Every call has a deadline (`callTimeoutMs`): a worker that does not answer in time is stopped,
 *   and that call and every other one fail with a message saying so, never a hang.
 * - A worker that dies (an uncaught error, an abort of the WebAssembly) fails every pending and
 *   later call at once, with the reason.
 * - The worker keeps the process alive only while a call is waiting for it (an idle open store does
 *   not, as PGlite on the main thread did not).
 * - Failures of statements arrive as the `Error` the worker caught, with PostgreSQL's fields.
 */
import { createRequire } from "node:module"
import { pathToFileURL } from "node:url"
import { Worker } from "node:worker_threads"
import { type NewCluster, startNewCluster, type StartedFrom } from "./clusterTemplate.js"
import { decodeFailure, type Reply, type Request } from "./pgliteProtocol.js"

/** The members of PGlite this project relies on (PGlite's own declarations need `@types/emscripten`). */
export interface PgliteDatabase {
  readonly closed: boolean
  /** How its cluster came to be (`clusterTemplate.ts`). */
  readonly startedFrom: StartedFrom
  readonly query: <T>(sql: string, params?: Array<unknown>, options?: { readonly rowMode?: "array" }) => Promise<{ readonly rows: Array<T> }>
  readonly exec: (sql: string) => Promise<ReadonlyArray<{ readonly rows: ReadonlyArray<unknown> }>>
  readonly close: () => Promise<void>
  /** Stops the worker at once, as a crash would (for tests of what follows one). */
  readonly terminate: () => Promise<void>
}

/**
 * The process's Node options for the worker (its loaders, `--import`s, memory flags), without those
 * about the main script: `node --input-type=module -e ...` would make the worker refuse its file.
 */
const inheritedExecArgv = (): Array<string> => {
  const kept: Array<string> = []
  const args = process.execArgv
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg.startsWith("--input-type=")) continue
    if (["--input-type", "-e", "--eval", "-p", "--print"].includes(arg)) {
      i++
      continue
    }
    kept.push(arg)
  }
  return kept
}

/**
 * The worker: `pgliteWorker.js` next to this file when built; from source (tests, the bench) the
 * `.ts` file, loaded after registering tsx in the worker (a worker does not inherit the loader).
 */
const newWorker = (): Worker => {
  const fromSource = import.meta.url.endsWith(".ts")
  if (!fromSource) return new Worker(new URL("./pgliteWorker.js", import.meta.url), { execArgv: inheritedExecArgv() })
  // tsx's ES module entry (resolving from here finds its CommonJS one, which sits beside it).
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx/esm/api").replace(/\.cjs$/, ".mjs")).href
  const source = new URL("./pgliteWorker.ts", import.meta.url).href
  return new Worker(`import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(source)}) })`, { eval: true })
}

type RequestBody = Request extends infer R ? (R extends Request ? Omit<R, "id"> : never) : never

interface Pending {
  readonly resolve: (value: unknown) => void
  readonly reject: (reason: unknown) => void
  readonly timer: ReturnType<typeof setTimeout>
}

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`

/**
 * Starts a worker with PGlite on `dataDir`, a new cluster when `newCluster` says where (from the
 * process's copy of one when there is one: `clusterTemplate.ts`); rejects with the start's failure
 * (the worker stopped, its files closed).
 */
export const start = async (
  dataDir: string,
  newCluster: NewCluster | undefined,
  options: { readonly startTimeoutMs: number; readonly callTimeoutMs: number }
): Promise<PgliteDatabase> => {
  const worker = newWorker()
  worker.unref()
  const pending = new Map<number, Pending>()
  const state: { next: number; closed: boolean; broken: Error | undefined } = { next: 0, closed: false, broken: undefined }

  const settle = (id: number): Pending | undefined => {
    const call = pending.get(id)
    if (call === undefined) return undefined
    pending.delete(id)
    clearTimeout(call.timer)
    if (pending.size === 0) worker.unref()
    return call
  }
  /** The worker is gone or stuck: every waiting call fails with `reason`, and so does every later one. */
  const fail = (reason: Error) => {
    if (state.broken === undefined && !state.closed) state.broken = reason
    for (const id of [...pending.keys()]) settle(id)?.reject(reason)
  }

  worker.on("message", (reply: Reply) => {
    const call = settle(reply.id)
    if (call === undefined) return
    if (reply.ok) call.resolve(reply.value)
    else call.reject(decodeFailure(reply.failure))
  })
  worker.on("error", (e) => fail(new Error(`the embedded database's worker failed: ${e.message}`, { cause: e })))
  worker.on("messageerror", (e) => fail(new Error(`the embedded database's worker sent a message that could not be read: ${e.message}`, { cause: e })))
  worker.on("exit", (code) => fail(new Error(`the embedded database's worker stopped (exit code ${code})`)))

  const call = (body: RequestBody, timeoutMs: number): Promise<any> =>
    new Promise((resolve, reject) => {
      if (state.broken !== undefined) return reject(state.broken)
      if (state.closed) return reject(new Error("the embedded database is closed"))
      const id = state.next++
      const timer = setTimeout(() => {
        fail(new Error(`the embedded database did not answer a ${body.op} within ${seconds(timeoutMs)}: its worker was stopped`))
        void worker.terminate()
      }, timeoutMs)
      timer.unref()
      if (pending.size === 0) worker.ref()
      pending.set(id, { resolve, reject, timer })
      try {
        worker.postMessage({ ...body, id } as Request)
      } catch (e) {
        // A parameter that cannot be sent to another thread (a function, a class with private state).
        settle(id)
        reject(e)
      }
    })

  const terminate = async () => {
    fail(new Error("the embedded database's worker was stopped"))
    await worker.terminate()
  }

  const run = (template: Blob | undefined, copy: boolean): Promise<Blob | null> =>
    call({ op: "start", dataDir, ...(template === undefined ? {} : { template }), ...(copy ? { copy } : {}) }, options.startTimeoutMs)
  let startedFrom: StartedFrom = "existing"
  try {
    if (newCluster === undefined) await run(undefined, false)
    else startedFrom = await startNewCluster(newCluster, run)
  } catch (e) {
    state.closed = true
    await worker.terminate()
    throw e
  }

  return {
    get closed() {
      return state.closed || state.broken !== undefined
    },
    startedFrom,
    query: (sql, params = [], queryOptions) =>
      call({ op: "query", sql, params, ...(queryOptions?.rowMode === undefined ? {} : { rowMode: queryOptions.rowMode }) }, options.callTimeoutMs),
    exec: (sql) => call({ op: "exec", sql }, options.callTimeoutMs),
    close: async () => {
      if (state.closed) return
      try {
        if (state.broken === undefined) await call({ op: "close" }, options.callTimeoutMs)
      } finally {
        state.closed = true
        await worker.terminate()
      }
    },
    terminate
  }
}
