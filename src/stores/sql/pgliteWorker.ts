/**
 * The worker thread that owns one PGlite instance (started by `PgliteWorkerDatabase`): PGlite's
 * work (its start, every statement, its close) runs here, so that it never holds the main thread's
 * event loop (timers, signals, HTTP requests keep being served while it works).
 *
 * It answers the requests of `pgliteProtocol.ts` one after the other, in the order they came.
 */
import type { PGlite } from "@electric-sql/pglite"
import { parentPort } from "node:worker_threads"
import { encodeFailure, type Reply, type Request } from "./pgliteProtocol.js"

const port = parentPort
if (port === null) throw new Error("pgliteWorker.ts runs as a worker thread (started by PgliteWorkerDatabase)")

let db: PGlite | undefined

/** The files a failed start left open in PGlite's file system (its close gives up before them; descriptors are the process's). */
const closeFiles = (instance: PGlite): void => {
  const fs = (instance as unknown as { mod?: { FS?: { streams?: Array<unknown>; close: (stream: unknown) => void } } }).mod?.FS
  for (const stream of fs?.streams ?? []) {
    try {
      if (stream) fs!.close(stream)
    } catch {}
  }
}

/** Starts PGlite on `dataDir`: a new cluster from `template` when given, else by initdb; answers a copy of its files when asked (a gzip'd tar). */
const start = async (dataDir: string, template: Blob | undefined, copy: boolean): Promise<Blob | null> => {
  const [{ PGlite }, { vector }] = await Promise.all([import("@electric-sql/pglite"), import("@electric-sql/pglite-pgvector")])
  // New stores get data checksums: a damaged page fails its read instead of being read as data (a template has them too).
  const instance = new PGlite({ dataDir, extensions: { vector }, initDbStartParams: ["--data-checksums"], ...(template === undefined ? {} : { loadDataDir: template }) })
  let files: Blob | null = null
  try {
    await instance.waitReady
    await instance.exec("CREATE EXTENSION IF NOT EXISTS vector")
    if (copy) files = await instance.dumpDataDir("gzip")
  } catch (e) {
    await instance.close().catch(() => {})
    closeFiles(instance)
    throw e
  }
  db = instance
  return files
}

const started = (): PGlite => {
  if (db === undefined) throw new Error("the database has not started")
  return db
}

const handle = async (request: Request): Promise<unknown> => {
  switch (request.op) {
    case "start":
      return start(request.dataDir, request.template, request.copy === true)
    case "query": {
      const result = await started().query(request.sql, request.params as Array<unknown>, request.rowMode === undefined ? undefined : { rowMode: request.rowMode })
      return { rows: result.rows, affectedRows: result.affectedRows }
    }
    case "exec":
      return (await started().exec(request.sql)).map((result) => ({ rows: result.rows, affectedRows: result.affectedRows }))
    case "close": {
      const instance = db
      db = undefined
      if (instance !== undefined && !instance.closed) await instance.close()
      return null
    }
  }
}

// One request at a time, in order (PGlite has one connection; a transaction's statements follow each other).
let queue: Promise<void> = Promise.resolve()
port.on("message", (request: Request) => {
  queue = queue.then(async () => {
    let reply: Reply
    try {
      reply = { id: request.id, ok: true, value: await handle(request) }
    } catch (e) {
      reply = { id: request.id, ok: false, failure: encodeFailure(e) }
    }
    try {
      port.postMessage(reply)
    } catch (e) {
      // A value that cannot be cloned: said as a failure of the request.
      port.postMessage({ id: request.id, ok: false, failure: encodeFailure(e) } satisfies Reply)
    }
  })
})
