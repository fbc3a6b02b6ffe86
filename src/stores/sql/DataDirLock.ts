/**
 * One process at a time on a data directory. PGlite is a single-process database: two processes
 * that open one directory both believe they own it, and the writes of one are lost (or, on a
 * directory both create at once, the files are left unopenable). So an embedded store takes this
 * lock before PGlite touches the directory, and holds it for as long as it is open; readers too,
 * since opening a database writes to it.
 *
 * The lock is a file, `pantheon.lock`, created exclusively (O_EXCL), holding the owner's pid, host
 * and a token. A lock whose process is gone (kill -9, a crash) is stale and is reclaimed; taking it
 * over is itself guarded by a second exclusive file, so two processes never both reclaim it.
 */
import { Data } from "effect"
import { randomUUID } from "node:crypto"
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from "node:fs"
import { hostname } from "node:os"
import { dirname, join, resolve } from "node:path"

/** The data directory could not be used: another process holds it, or it cannot be created. */
export class DataDirUnavailable extends Data.TaggedError("DataDirUnavailable")<{
  readonly dataDir: string
  readonly reason: string
  /** The process that holds the directory, when that is why. */
  readonly pid?: number
}> {
  override get message() {
    return `The data directory ${this.dataDir} ${this.reason}`
  }
}

const LOCK_FILE = "pantheon.lock"
/** A reclaim guard older than this was left by a process that died while reclaiming. */
const RECLAIM_GUARD_STALE_MS = 10_000
/** How often a waiting process looks again. */
const RETRY_EVERY_MS = 100

interface Owner {
  readonly pid: number
  readonly host: string
  readonly token: string
}

const parseOwner = (text: string): Owner | undefined => {
  try {
    const owner = JSON.parse(text) as Owner
    return typeof owner.pid === "number" && typeof owner.host === "string" && typeof owner.token === "string" ? owner : undefined
  } catch {
    return undefined
  }
}

const alive = (owner: Owner): boolean => {
  if (owner.host !== hostname()) return true // another machine's process: it cannot be checked, so it is not stale
  try {
    process.kill(owner.pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Creates a file only if it does not exist; false if it does. */
const createExclusive = (path: string, content: string): boolean => {
  try {
    const fd = openSync(path, "wx")
    try {
      writeSync(fd, content)
    } finally {
      closeSync(fd)
    }
    return true
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false
    throw e
  }
}

const readOwner = (path: string): Owner | undefined => {
  try {
    return parseOwner(readFileSync(path, "utf8"))
  } catch {
    return undefined
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

/** One attempt: the lock's token if taken, else the live owner that holds it. */
const tryLock = (dataDir: string, me: Owner): { readonly taken: true } | { readonly taken: false; readonly owner: Owner | undefined } => {
  const path = join(dataDir, LOCK_FILE)
  if (createExclusive(path, JSON.stringify(me))) return { taken: true }
  const owner = readOwner(path)
  if (owner !== undefined && alive(owner)) return { taken: false, owner }
  // Stale (or unreadable, half-written by a process that died): reclaim it under a guard.
  const guard = `${path}.reclaim`
  if (!createExclusive(guard, JSON.stringify(me))) {
    try {
      if (Date.now() - statSync(guard).mtimeMs > RECLAIM_GUARD_STALE_MS) unlinkSync(guard)
    } catch {}
    return { taken: false, owner: undefined }
  }
  try {
    const again = readOwner(path)
    if (again === undefined || !alive(again)) {
      try {
        unlinkSync(path)
      } catch {}
    }
  } finally {
    unlinkSync(guard)
  }
  return createExclusive(path, JSON.stringify(me)) ? { taken: true } : { taken: false, owner: readOwner(path) }
}

/**
 * Takes the lock on `dataDir` (created when missing); waits up to `timeoutMs` for another process
 * to let go (0: fails at once). Resolves to the function that lets go; rejects with `DataDirUnavailable`.
 */
export const lock = async (dataDir: string, timeoutMs = 0): Promise<() => void> => {
  const me: Owner = { pid: process.pid, host: hostname(), token: randomUUID() }
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
      return () => {
        if (readOwner(path)?.token === me.token) unlinkSync(path)
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
