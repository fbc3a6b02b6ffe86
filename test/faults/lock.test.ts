/**
 * The data-directory lock recovers by itself and is never stolen from a live owner. Liveness is
 * proved with more than a pid: on this machine and pid namespace by the pid *and* its start time,
 * elsewhere by a heartbeat the owner renews. Ages are set on the lock file itself (utimes), so
 * nothing here waits for a clock.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs"
import { hostname, tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { DataDirUnavailable, LOCK_FILE, lock, processStart, STALE_AFTER_MS } from "../../src/stores/sql/DataDirLock.js"
import { root } from "../support/cli.js"

const dir = mkdtempSync(join(tmpdir(), "pantheon-lock-"))
const children: Array<ChildProcess> = []
afterAll(() => {
  for (const child of children) child.kill("SIGKILL")
  rmSync(dir, { recursive: true, force: true })
})

let n = 0
const freshDir = () => {
  const d = join(dir, `d${n++}`)
  mkdirSync(d)
  return d
}

const here = { host: hostname(), boot: readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim(), pidNs: readlinkSync("/proc/self/ns/pid") }

/** Writes a lock record into `d`, its file last touched `ageMs` ago. */
const plant = (d: string, record: object, ageMs = 0) => {
  const path = join(d, LOCK_FILE)
  writeFileSync(path, JSON.stringify(record))
  const when = new Date(Date.now() - ageMs)
  utimesSync(path, when, when)
}

const owner = (d: string) => JSON.parse(readFileSync(join(d, LOCK_FILE), "utf8")) as { pid: number; token: string }

const refusal = async (d: string) => {
  const e = await lock(d, 0).then(
    (release) => {
      release()
      return undefined
    },
    (e: unknown) => e
  )
  expect(e).toBeInstanceOf(DataDirUnavailable)
  return e as DataDirUnavailable
}

/** Takes the lock (it must be free or stale), checks it is ours, lets go. */
const takes = async (d: string) => {
  const release = await lock(d, 0)
  expect(owner(d).pid).toBe(process.pid)
  release()
  expect(existsSync(join(d, LOCK_FILE))).toBe(false)
}

/** A second real process that takes the lock on `d` and holds it until killed. */
const holder = (d: string) =>
  new Promise<ChildProcess>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "test/faults/fixtures/hold-lock.ts", d], { cwd: root, stdio: ["ignore", "pipe", "inherit"] })
    children.push(child)
    child.once("error", reject)
    child.once("exit", (code) => reject(new Error(`holder exited with ${code}`)))
    child.stdout!.on("data", (chunk: Buffer) => chunk.toString().startsWith("locked") && resolve(child))
  })

const exited = (child: ChildProcess) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once("exit", () => resolve())))

describe("the data-directory lock", () => {
  it("a live owner in another process is respected, even stopped and with an old file; once killed its lock is reclaimed at once", async () => {
    const d = freshDir()
    const child = await holder(d)
    expect(owner(d).pid).toBe(child.pid)
    expect((await refusal(d)).message).toBe(`The data directory ${d} is in use by process ${child.pid} (one process at a time: PGlite is single-process)`)
    // Stopped (no heartbeat) and its file untouched for far longer than the staleness window: still its owner.
    child.kill("SIGSTOP")
    plant(d, JSON.parse(readFileSync(join(d, LOCK_FILE), "utf8")), 10 * STALE_AFTER_MS)
    expect((await refusal(d)).pid).toBe(child.pid)
    child.kill("SIGKILL")
    await exited(child)
    await takes(d)
  }, 60_000)

  it("the owner renews its heartbeat while it holds the lock (from a thread, so a busy main thread does not stop it)", async () => {
    const d = freshDir()
    const release = await lock(d, 0)
    try {
      const path = join(d, LOCK_FILE)
      const old = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000)
      utimesSync(path, old, old)
      // Compared with what the file system kept (its mtime need not be the exact milliseconds given).
      const planted = statSync(path).mtimeMs
      // The main thread blocked (as PGlite blocks it) until the file is touched: only another thread can touch it.
      const deadline = Date.now() + 20_000
      while (statSync(path).mtimeMs <= planted && Date.now() < deadline) {}
      expect(statSync(path).mtimeMs).toBeGreaterThan(planted)
    } finally {
      release()
    }
  }, 30_000)

  it("a reused pid is another process: a lock naming a live process that started at another time is reclaimed", async () => {
    const d = freshDir()
    plant(d, { ...here, pid: process.ppid, token: "earlier", started: "1" })
    expect(processStart(process.ppid)).not.toBe("1")
    await takes(d)
  })

  it("this process's own pid in a lock it does not hold (an earlier life) is reclaimed", async () => {
    const d = freshDir()
    plant(d, { ...here, pid: process.pid, token: "my-earlier-life", started: processStart(process.pid) })
    await takes(d)
  })

  it("PID 1 of a restarted container (another pid namespace) is reclaimed once its heartbeat stops, respected while it beats", async () => {
    const d = freshDir()
    const pid1 = { ...here, pidNs: "pid:[1]", pid: 1, token: "container", started: "42" }
    plant(d, pid1, 0)
    expect((await refusal(d)).pid).toBe(1)
    plant(d, pid1, STALE_AFTER_MS + 1_000)
    await takes(d)
  })

  it("another host's lock is respected while its heartbeat is fresh and reclaimed once it is stale", async () => {
    const d = freshDir()
    const remote = { pid: 7, host: "another-pod", token: "remote", boot: "x", pidNs: "pid:[9]", started: "5" }
    plant(d, remote, 0)
    const refused = await refusal(d)
    expect(refused.message).toBe(`The data directory ${d} is in use by process 7 on another-pod (one process at a time: PGlite is single-process)`)
    plant(d, remote, STALE_AFTER_MS + 1_000)
    await takes(d)
  })

  it("pids 0 and -1 are no owner: such a lock is reclaimed once stale (they used to count as alive for ever)", async () => {
    for (const pid of [0, -1]) {
      const d = freshDir()
      plant(d, { ...here, pid, token: "bad", started: "1" }, STALE_AFTER_MS + 1_000)
      await takes(d)
    }
  })

  it("a waiting process takes the lock as soon as its owner lets go", async () => {
    const d = freshDir()
    const release = await lock(d, 0)
    const waiting = lock(d, 60_000)
    release()
    ;(await waiting)()
    expect(existsSync(join(d, LOCK_FILE))).toBe(false)
  })
})
