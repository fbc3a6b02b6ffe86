/**
 * The PostgreSQL server the tests use: PANTHEON_TEST_DATABASE_URL, else the local `test` database.
 * Each test file works in its own schema (dropped afterwards) and NOTIFY channel, so files and runs
 * never see each other's tables or messages.
 */
import pg from "pg"
import { afterAll, beforeAll } from "vitest"
import * as net from "node:net"
import { createServer, type Server, type Socket } from "node:net"

export const baseUrl = process.env.PANTHEON_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"

/** Whether the server answers; in CI an unreachable server fails the run instead of skipping. */
export const reachable = async (): Promise<boolean> => {
  const client = new pg.Client({ connectionString: baseUrl, connectionTimeoutMillis: 3000 })
  try {
    await client.connect()
    await client.query("SELECT 1")
    return true
  } catch (e) {
    if (process.env.CI) throw new Error(`PostgreSQL at ${baseUrl} is unreachable in CI: ${(e as Error).message}`)
    console.warn(`skipping the PostgreSQL tests: ${baseUrl} is unreachable (${(e as Error).message})`)
    return false
  } finally {
    await client.end().catch(() => {})
  }
}

export const query = async <A extends object = any>(sql: string, params: Array<unknown> = []): Promise<Array<A>> => {
  const client = new pg.Client({ connectionString: baseUrl, application_name: "pantheon-test-admin" })
  await client.connect()
  try {
    return (await client.query(sql, params)).rows as Array<A>
  } finally {
    await client.end()
  }
}

/** A fresh schema; the URL puts every connection in it. */
export const freshSchema = async (name: string) => {
  const schema = `pt_${name}_${Math.random().toString(36).slice(2, 8)}`
  await query(`CREATE SCHEMA ${schema}`)
  const url = new URL(baseUrl)
  url.searchParams.set("options", `-c search_path=${schema}`)
  return { schema, url: url.toString(), drop: () => query(`DROP SCHEMA ${schema} CASCADE`) }
}

/**
 * A test file's schema on the server: `up` says whether the server answers; the schema is made
 * before the file's tests and dropped after them (its `url` puts every connection in it).
 */
export const schemaForFile = async (name: string) => {
  const up = await reachable()
  let schema: Awaited<ReturnType<typeof freshSchema>> | undefined
  beforeAll(async () => {
    if (up) schema = await freshSchema(name)
  })
  afterAll(async () => {
    await schema?.drop()
  })
  return {
    up,
    get url() {
      return schema!.url
    }
  }
}

export const connectionsOf = async (applicationName: string) =>
  Number((await query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1", [applicationName]))[0]!.n)

/** A loopback TCP proxy in front of the server that a test can cut (every connection dropped, new ones refused) and restore. */
export const makeProxy = async (target = new URL(baseUrl)) => {
  const sockets = new Set<Socket>()
  let server: Server | undefined
  let port = 0
  const listen = () =>
    new Promise<void>((resolve) => {
      server = createServer((client) => {
        const upstream = new net.Socket()
        upstream.connect(Number(target.port || 5432), target.hostname)
        for (const s of [client, upstream]) {
          sockets.add(s)
          s.on("close", () => sockets.delete(s))
          s.on("error", () => {})
        }
        client.pipe(upstream).pipe(client)
      })
      server.listen(port, "127.0.0.1", () => {
        port = (server!.address() as { port: number }).port
        resolve()
      })
    })
  await listen()
  return {
    get port() {
      return port
    },
    url: (url: string) => {
      const u = new URL(url)
      u.hostname = "127.0.0.1"
      u.port = String(port)
      return u.toString()
    },
    cut: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        sockets.clear()
        server!.close(() => resolve())
      }),
    restore: listen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server?.close(() => resolve())
        if (!server?.listening) resolve()
      })
  }
}

