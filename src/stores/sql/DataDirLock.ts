/**
 * One process at a time on a data directory. PGlite is a single-process database: two processes
 * that open one directory both believe they own it, and the writes of one are lost (or, on a
 * directory both create at once, the files are left unopenable). So an embedded store takes this
 * lock before PGlite touches the directory, and holds it for as long as it is open; readers too,
 * since opening a database writes to it.
 *
 * The lock is a file, `pantheon.lock`, created atomically (written aside, then hard-linked into
 * place, so it is never seen half-written), naming its owner: pid, host, boot id, pid namespace,
 * the process's start time and a token. Whether the owner still lives is proved with more than a pid:
 * - On the owner's own machine and pid namespace (same host, boot id and namespace), the owner is
 *   alive exactly when a process with its pid exists *and* started when the lock says. A reused pid
 *   (a restarted container's PID 1, an unrelated process, this very process in an earlier life) is
 *   another process and the lock is stale at once; a live owner is respected however busy or
 *   stopped it is.
 * - Anywhere else (another host on a shared volume, another container's namespace, a system without
 *   /proc) nothing about the pid can be checked, so the owner proves it is alive by a heartbeat: a
 *   worker thread touches the file every `HEARTBEAT_MS` (a thread, so a main thread that PGlite
 *   keeps busy for seconds never looks dead). A lock whose file was not touched for
 *   `STALE_AFTER_MS` is stale. This assumes the hosts' clocks agree within a few seconds (NTP).
 * Taking a stale lock over is guarded by a second exclusive file, so two processes never both do.
 */
import { DataDirUnavailable } from "../../domain/errors.js"
import { randomUUID } from "node:crypto"
import { closeSync, existsSync, linkSync, mkdirSync, openSync, readFileSync, readlinkSync, statSync, unlinkSync, writeSync } from "node:fs"
import { hostname } from "node:os"
import { dirname, join, resolve } from "node:path"
import { Worker } from "node:worker_threads"

export { DataDirUnavailable }

export const LOCK_FILE = "pantheon.lock"
/** How often the owner touches its lock file. */
export const HEARTBEAT_MS = 1_000
/** A lock whose owner cannot be checked is stale once its file is this old: ten missed heartbeats. */
export const STALE_AFTER_MS = 10_000
/** A reclaim guard older than this was left by a process that died while reclaiming. */
const RECLAIM_GUARD_STALE_MS = 10_000
/** How often a waiting process looks again. */
const RETRY_EVERY_MS = 100

/** What a lock file says about its owner. `boot`, `pidNs` and `started` are absent where /proc is. */
export interface Owner {
  readonly pid: number
  readonly host: string
  readonly token: string
  readonly boot?: string
  readonly pidNs?: string
  readonly started?: string
}

const readText = (path: string): string | undefined => {
  try {
    return readFileSync(path, "utf8").trim()
  } catch {
    return undefined
  }
}

/** The start time of process `pid` in clock ticks since boot (field 22 of /proc/pid/stat), if it exists. */
export const processStart = (pid: number): string | undefined => {
  const stat = readText(`/proc/${pid}/stat`)
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ")".
  return stat?.slice(stat.lastIndexOf(")") + 2).split(" ")[19]
}

const pidNamespace = (): string | undefined => {
  try {
    return readlinkSync("/proc/self/ns/pid")
  } catch {
    return undefined
  }
}

/** This process as a lock owner. */
const myself = (): Owner => {
  const boot = readText("/proc/sys/kernel/random/boot_id")
  const pidNs = pidNamespace()
  const started = processStart(process.pid)
  return {
    pid: process.pid,
    host: hostname(),
    token: randomUUID(),
    ...(boot === undefined ? {} : { boot }),
    ...(pidNs === undefined ? {} : { pidNs }),
    ...(started === undefined ? {} : { started })
  }
}

/** The tokens of the locks this process holds now. */
const held = new Set<string>()

const parseOwner = (text: string | undefined): Owner | undefined => {
  if (text === undefined) return undefined
  try {
    const owner = JSON.parse(text) as Owner
    return Number.isSafeInteger(owner.pid) && owner.pid > 0 && typeof owner.host === "string" && typeof owner.token === "string" ? owner : undefined
  } catch {
    return undefined
  }
}

/** True when `owner` runs on this machine in this pid namespace, so its pid can be checked. */
const checkable = (owner: Owner, me: Owner): boolean =>
  me.boot !== undefined && me.pidNs !== undefined && owner.host === me.host && owner.boot === me.boot && owner.pidNs === me.pidNs && owner.started !== undefined

/**
 * Whether a lock is held by a live owner. `owner` is undefined when the file cannot be parsed;
 * `ageMs` is how long ago its file was last touched.
 */
export const ownerAlive = (owner: Owner | undefined, ageMs: number, me: Owner): boolean => {
  if (owner !== undefined && checkable(owner, me)) {
    if (owner.pid === me.pid) return held.has(owner.token)
    return processStart(owner.pid) === owner.started
  }
  return ageMs < STALE_AFTER_MS
}

/** The owner of the lock at `path` and whether it is alive; undefined when there is no lock. */
const inspect = (path: string, me: Owner): { readonly owner: Owner | undefined; readonly alive: boolean } | undefined => {
  let mtimeMs: number
  try {
    mtimeMs = statSync(path).mtimeMs
  } catch {
    return undefined
  }
  const owner = parseOwner(readText(path))
  return { owner, alive: ownerAlive(owner, Date.now() - mtimeMs, me) }
}

/** Creates `path` holding `content` only if it does not exist; false if it does. Never visible half-written. */
const createExclusive = (path: string, content: string): boolean => {
  const aside = `${path}.${process.pid}.${randomUUID()}`
  const fd = openSync(aside, "wx")
  try {
    writeSync(fd, content)
  } finally {
    closeSync(fd)
  }
  try {
    linkSync(aside, path)
    return true
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false
    throw e
  } finally {
    unlinkSync(aside)
  }
}

/**
 * Creates `dir` and its missing parents one level at a time (Node's recursive mkdir spins for ever
 * under /proc); fails with the path that could not be made.
 */
export const ensureDirectory = (dir: string): void => {
  const missing: Array<string> = []
  let current = resolve(dir)
  while (!existsSync(current)) {
    missing.unshift(current)
    const parent = dirname(current)
    if (parent === current) break
    current = parent
  }
  if (existsSync(current) && !statSync(current).isDirectory()) throw new Error(`${current} is not a directory`)
  for (const path of missing) {
    try {
      mkdirSync(path)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw new Error(`cannot create ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
    }
  }
}

/** One attempt: taken, or not (with the live owner when there is one). */
const tryLock = (dataDir: string, me: Owner): { readonly taken: true } | { readonly taken: false; readonly owner: Owner | undefined } => {
  const path = join(dataDir, LOCK_FILE)
  if (createExclusive(path, JSON.stringify(me))) return { taken: true }
  const found = inspect(path, me)
  if (found?.alive) return { taken: false, owner: found.owner }
  // Stale: reclaim it under a guard, looking again once the guard is ours.
  const guard = `${path}.reclaim`
  if (!createExclusive(guard, JSON.stringify(me))) {
    try {
      if (Date.now() - statSync(guard).mtimeMs > RECLAIM_GUARD_STALE_MS) unlinkSync(guard)
    } catch {}
    return { taken: false, owner: undefined }
  }
  try {
    if (!inspect(path, me)?.alive) {
      try {
        unlinkSync(path)
      } catch {}
    }
  } finally {
    unlinkSync(guard)
  }
  return createExclusive(path, JSON.stringify(me)) ? { taken: true } : { taken: false, owner: inspect(path, me)?.owner }
}

/** Touches the lock file from its own thread while it still holds `token`; stops when the file is gone or another's. */
const HEARTBEAT = `
const { workerData } = require("node:worker_threads")
const fs = require("node:fs")
const timer = setInterval(() => {
  try {
    if (JSON.parse(fs.readFileSync(workerData.path, "utf8")).token !== workerData.token) return clearInterval(timer)
    const now = new Date()
    fs.utimesSync(workerData.path, now, now)
  } catch {
    clearInterval(timer)
  }
}, workerData.every)
`

const startHeartbeat = (path: string, token: string): Promise<Worker> =>
  new Promise((resolveWorker, reject) => {
    const worker = new Worker(HEARTBEAT, { eval: true, workerData: { path, token, every: HEARTBEAT_MS } })
    worker.once("error", reject)
    // The thread beats only once it runs; a main thread blocked right after would otherwise delay it.
    worker.once("online", () => {
      worker.off("error", reject)
      worker.on("error", () => {})
      worker.unref()
      resolveWorker(worker)
    })
  })

/**
 * Takes the lock on `dataDir` (created when missing); waits up to `timeoutMs` for another process
 * to let go (0: fails at once). Resolves to the function that lets go; rejects with `DataDirUnavailable`.
 */
export const lock = async (dataDir: string, timeoutMs = 0): Promise<() => void> => {
  const me = myself()
  const path = join(dataDir, LOCK_FILE)
  const deadline = Date.now() + timeoutMs
  for (;;) {
    let result: ReturnType<typeof tryLock>
    try {
      ensureDirectory(dataDir)
      result = tryLock(dataDir, me)
    } catch (e) {
      throw new DataDirUnavailable({ dataDir, reason: `cannot be used: ${(e as Error).message}` })
    }
    if (result.taken) {
      held.add(me.token)
      let heartbeat: Worker
      const letGo = () => {
        held.delete(me.token)
        if (parseOwner(readText(path))?.token === me.token) unlinkSync(path)
      }
      try {
        heartbeat = await startHeartbeat(path, me.token)
      } catch (e) {
        letGo()
        throw new DataDirUnavailable({ dataDir, reason: `cannot be used: the lock's heartbeat did not start (${(e as Error).message})` })
      }
      return () => {
        void heartbeat.terminate()
        letGo()
      }
    }
    if (Date.now() >= deadline) {
      const owner = result.owner
      throw new DataDirUnavailable({
        dataDir,
        reason:
          owner === undefined
            ? "is being taken over by another process; try again"
            : `is in use by process ${owner.pid}${owner.host === hostname() ? "" : ` on ${owner.host}`} (one process at a time: PGlite is single-process)${timeoutMs > 0 ? `; waited ${timeoutMs} ms` : ""}`,
        ...(owner === undefined ? {} : { pid: owner.pid })
      })
    }
    await new Promise((r) => setTimeout(r, RETRY_EVERY_MS))
  }
}
