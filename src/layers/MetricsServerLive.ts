/**
 * An HTTP endpoint for monitoring: `/metrics` serves every Effect metric of the process in
 * Prometheus text format (through `@effect/opentelemetry` and OpenTelemetry's Prometheus exporter),
 * `/healthz` reports whether the store answers and what the manager cache holds.
 */
import { Metrics, Resource } from "@effect/opentelemetry"
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus"
import { Context, Effect, Either, Layer, Option, Runtime } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { ManagerCache } from "../services/ManagerCache.js"
import { StoreManagerRegistry } from "../services/StoreManagerRegistry.js"
import { ChangeBus } from "../stores/sql/ChangeBus.js"

export interface MetricsServerOptions {
  /** 0 picks a free port (see `MetricsServer.port`). */
  readonly port: number
  /** Default 127.0.0.1: expose it further on purpose. */
  readonly host?: string
}

export class MetricsServer extends Context.Tag("pantheon-persistence/MetricsServer")<MetricsServer, { readonly port: number; readonly url: string }>() {}

/** The health report: 200 when the catalog can be read, 503 otherwise. */
export const health = Effect.gen(function* () {
  const registry = yield* StoreManagerRegistry
  const cache = yield* ManagerCache
  const bus = yield* Effect.serviceOption(ChangeBus)
  const catalog = yield* Effect.either(Effect.timeout(registry.catalog, "2 seconds"))
  const listener = Option.isSome(bus) ? yield* bus.value.connected : true
  const ok = Either.isRight(catalog) && listener
  return {
    status: ok ? ("ok" as const) : ("degraded" as const),
    store: Either.isRight(catalog) ? { reachable: true, sources: catalog.right.length, listener } : { reachable: false, error: catalog.left.message, listener },
    cache: yield* cache.stats
  }
})

export const MetricsServerLive = (options: MetricsServerOptions): Layer.Layer<MetricsServer, never, StoreManagerRegistry | ManagerCache> =>
  Layer.unwrapEffect(
    Effect.sync(() => {
      const exporter = new PrometheusExporter({ preventServerStart: true })
      const server = Layer.scoped(
        MetricsServer,
        Effect.gen(function* () {
          const runtime = yield* Effect.runtime<StoreManagerRegistry | ManagerCache>()
          const http = createServer((req, res) => {
            const path = (req.url ?? "/").split("?")[0]
            if (req.method === "GET" && path === "/metrics") return exporter.getMetricsRequestHandler(req, res)
            if (req.method === "GET" && path === "/healthz") {
              Runtime.runPromise(runtime)(health).then(
                (report) => res.writeHead(report.status === "ok" ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify(report)),
                (e) => res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ status: "error", error: String(e) }))
              )
              return
            }
            res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics or /healthz\n")
          })
          const address = yield* Effect.acquireRelease(
            Effect.async<AddressInfo, Error>((resume) => {
              http.once("error", (e) => resume(Effect.fail(e)))
              http.listen(options.port, options.host ?? "127.0.0.1", () => resume(Effect.succeed(http.address() as AddressInfo)))
            }),
            () => Effect.async<void>((resume) => void http.close(() => resume(Effect.void)))
          ).pipe(Effect.orDie)
          return { port: address.port, url: `http://${options.host ?? "127.0.0.1"}:${address.port}` }
        })
      )
      return Layer.merge(server, Metrics.layer(() => exporter).pipe(Layer.provide(Resource.layer({ serviceName: "pantheon-persistence" }))))
    })
  )
