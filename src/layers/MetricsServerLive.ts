/**
 * An HTTP endpoint for monitoring: `/metrics` serves every Effect metric of the process in
 * Prometheus text format (through `@effect/opentelemetry` and OpenTelemetry's Prometheus exporter),
 * `/healthz` the health report (`health.ts`, slow sources included): 200 when healthy, 503 otherwise.
 */
import { Context, Effect, Layer, Runtime } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { errorReason, type MissingPackage } from "../domain/errors.js"
import { importOptional } from "../optionalPeers.js"
import type { ManagerCache } from "../services/ManagerCache.js"
import type { SlowSources } from "../services/SlowSources.js"
import type { StoreEvents } from "../services/StoreEvents.js"
import type { StoreManagerRegistry } from "../services/StoreManagerRegistry.js"
import { health } from "./health.js"

export interface MetricsServerOptions {
  /** 0 picks a free port (see `MetricsServer.port`). */
  readonly port: number
  /** Default 127.0.0.1: expose it further on purpose. */
  readonly host?: string
}

/** The endpoint's address, once it listens. */
export class MetricsServer extends Context.Tag("pantheon-persistence/MetricsServer")<MetricsServer, { readonly port: number; readonly url: string }>() {
  static readonly layer = (options: MetricsServerOptions): Layer.Layer<MetricsServer, MissingPackage, StoreManagerRegistry | ManagerCache | SlowSources | StoreEvents> =>
    serve(options)
}

/** @deprecated The earlier name of `MetricsServer.layer`, kept for the code that uses it. */
export const MetricsServerLive = (options: MetricsServerOptions) => MetricsServer.layer(options)

/** OpenTelemetry, loaded when an endpoint is built: optional peers, which a program without one never loads. */
const openTelemetry = importOptional("the metrics endpoint", ["@effect/opentelemetry", "@opentelemetry/exporter-prometheus"], () =>
  Promise.all([import("@effect/opentelemetry/Metrics"), import("@effect/opentelemetry/Resource"), import("@opentelemetry/exporter-prometheus")])
)

const serve = (options: MetricsServerOptions): Layer.Layer<MetricsServer, MissingPackage, StoreManagerRegistry | ManagerCache | SlowSources | StoreEvents> =>
  Layer.unwrapEffect(
    Effect.map(openTelemetry, ([Metrics, Resource, { PrometheusExporter }]) => {
      const exporter = new PrometheusExporter({ preventServerStart: true })
      const server = Layer.scoped(
        MetricsServer,
        Effect.gen(function* () {
          const runtime = yield* Effect.runtime<StoreManagerRegistry | ManagerCache | SlowSources | StoreEvents>()
          const http = createServer((req, res) => {
            const path = (req.url ?? "/").split("?")[0]
            if (req.method === "GET" && path === "/metrics") return exporter.getMetricsRequestHandler(req, res)
            if (req.method === "GET" && path === "/healthz") {
              Runtime.runPromise(runtime)(health).then(
                (report) => res.writeHead(report.status === "ok" ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify(report)),
                (e) => res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ status: "error", error: errorReason(e) }))
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
