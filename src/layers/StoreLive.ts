import { Effect, Layer, Option } from "effect"
import { EmbeddedStoreLive } from "./EmbeddedStoreLive.js"
import { databaseUrlConfig, PostgresStoreLive, postgresConfig } from "./PostgresStoreLive.js"

/**
 * The backend the environment asks for: PostgreSQL when `PANTHEON_DATABASE_URL` (or `DATABASE_URL`)
 * is set, otherwise the embedded store in `PANTHEON_DATA_DIR` (or `dataDir`). The command line uses this.
 */
export const StoreLive = (embedded: { readonly dataDir?: string } = {}) =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const url = yield* databaseUrlConfig
      if (Option.isNone(url)) return EmbeddedStoreLive(embedded)
      const pg = yield* postgresConfig
      return PostgresStoreLive({ url: url.value, maxConnections: pg.maxConnections, channel: pg.channel })
    })
  )
