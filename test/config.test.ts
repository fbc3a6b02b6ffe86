import { describe, expect, it } from "@effect/vitest"
import { Cause, ConfigProvider, Duration, Effect, Either, Exit, Layer, Option, Redacted } from "effect"
import { cacheConfigFromEnv, decodeCacheConfig, defaultCacheConfig } from "../src/domain/config.js"
import type { InvalidConfig } from "../src/domain/errors.js"
import { Embedder, EmbedderConfig } from "../src/embedding/Embedder.js"
import { dataDirConfig } from "../src/layers/EmbeddedStoreLive.js"
import { PersistenceAdapterLive } from "../src/layers/PersistenceAdapterLive.js"
import { databaseUrlConfig, postgresConfig } from "../src/layers/PostgresStoreLive.js"
import { StoreLive } from "../src/layers/StoreLive.js"
import { managersBackend } from "../src/layers/backends.js"
import { CacheSettings } from "../src/services/CacheSettings.js"

const refused = (input: unknown) => {
  const result = decodeCacheConfig(input)
  if (Either.isRight(result)) throw new Error(`accepted ${JSON.stringify(input)}`)
  return result.left
}

describe("CacheConfig", () => {
  it("has the documented defaults", () => {
    const c = Either.getOrThrow(decodeCacheConfig({}))
    expect(c).toEqual(defaultCacheConfig)
    expect(Duration.toMillis(c.ttl)).toBe(60_000)
    expect(c.capacity).toBe(64)
    expect(Duration.toMillis(c.failureTtl)).toBe(1000)
    expect(c.refreshAhead).toBe(0.8)
    expect(Duration.toMillis(c.staleIfError)).toBe(300_000)
  })

  it("accepts the seed-era shape { ttl: ms, maxSize } and duration strings", () => {
    const c = Either.getOrThrow(decodeCacheConfig({ ttl: 1500, maxSize: 10, failureTtl: "250 millis", staleIfError: 0 }))
    expect(Duration.toMillis(c.ttl)).toBe(1500)
    expect(c.capacity).toBe(10)
    expect(Duration.toMillis(c.failureTtl)).toBe(250)
    expect(Duration.toMillis(c.staleIfError)).toBe(0)
  })

  it.each([
    [{ ttl: -1 }, "ttl", "must not be negative"],
    [{ ttl: 0 }, "ttl", "must be greater than 0"],
    [{ ttl: Number.NaN }, "ttl", "is not a duration"],
    [{ ttl: "5 fortnights" }, "ttl", "is not a duration"],
    [{ ttl: Infinity }, "ttl", "is not a duration"],
    [{ capacity: 0 }, "capacity", "at least 1"],
    [{ maxSize: 2.5 }, "maxSize", "whole number"],
    [{ capacity: 3, maxSize: 4 }, "maxSize", "conflicts"],
    [{ refreshAhead: 1.5 }, "refreshAhead", "fraction"],
    [{ loadConcurrency: -2 }, "loadConcurrency", "at least 1"],
    [{ ttl: "60 seconds", tll: 5 }, "tll", "is not a cache option"],
    [{ sweepInterval: {} }, "sweepInterval", ""]
  ])("refuses %j naming the field", (input, field, reason) => {
    const error = refused(input)
    expect(error._tag).toBe("InvalidConfig")
    expect(error.field).toBe(field)
    expect(error.message).toContain(field)
    expect(error.message).toContain(reason)
  })

  it("refuses a config that is not an object", () => {
    expect(refused("fast").field).toBe("cacheConfig")
  })

  it.effect("reads PANTHEON_* environment variables through effect/Config", () =>
    Effect.gen(function* () {
      const provider = ConfigProvider.fromMap(new Map([["PANTHEON_CACHE_TTL", "2 minutes"], ["PANTHEON_CACHE_CAPACITY", "12"]]))
      const config = yield* Effect.provide(CacheSettings, CacheSettings.layerFromEnv.pipe(Layer.provide(Layer.setConfigProvider(provider))))
      expect(Duration.toMillis(config.ttl)).toBe(120_000)
      expect(config.capacity).toBe(12)
    }))

  it.effect("fails the layer on an invalid environment value, naming the variable", () =>
    Effect.gen(function* () {
      const provider = ConfigProvider.fromMap(new Map([["PANTHEON_CACHE_TTL", "soon"]]))
      const exit = yield* Effect.exit(Effect.provide(CacheSettings, CacheSettings.layerFromEnv.pipe(Layer.provide(Layer.setConfigProvider(provider)))))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(String(Exit.isFailure(exit) && exit.cause)).toContain("PANTHEON_CACHE_TTL")
    }))
})

/** What `effect` fails with when it runs with these variables as its environment. */
const refusedWith = <A, E>(env: Record<string, string>, effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(Effect.withConfigProvider(effect, ConfigProvider.fromMap(new Map(Object.entries(env)))))
    if (Exit.isSuccess(exit)) throw new Error(`accepted ${JSON.stringify(env)}`)
    const failure = Cause.failureOption(exit.cause)
    if (Option.isNone(failure)) throw new Error(`not a failure: ${Cause.pretty(exit.cause)}`)
    return failure.value as InvalidConfig
  })

const withEnv = <A, E>(env: Record<string, string>, effect: Effect.Effect<A, E>) =>
  Effect.withConfigProvider(effect, ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("configuration from the environment: every variable of the README, with a bad value", () => {
  const cacheSettings = Effect.provide(CacheSettings, CacheSettings.layerFromEnv)
  const embedder = Effect.provide(Embedder, Embedder.layerFromEnv)
  it.effect.each([
    ["PANTHEON_CACHE_TTL", "-5", "ttl must not be negative", cacheSettings],
    ["PANTHEON_CACHE_CAPACITY", "abc", "capacity must be a whole number of at least 1", cacheSettings],
    ["PANTHEON_CACHE_FAILURE_TTL", "soon", "failureTtl is not a duration", cacheSettings],
    ["PANTHEON_CACHE_REFRESH_AHEAD", "2", "refreshAhead must be a fraction", cacheSettings],
    ["PANTHEON_CACHE_STALE_IF_ERROR", "-1", "staleIfError must not be negative", cacheSettings],
    ["PANTHEON_CACHE_SWEEP_INTERVAL", "0", "sweepInterval must be greater than 0", cacheSettings],
    ["PANTHEON_LOAD_TIMEOUT", "forever", "loadTimeout is not a duration", cacheSettings],
    ["PANTHEON_LOAD_CONCURRENCY", "1.5", "loadConcurrency must be a whole number of at least 1", cacheSettings],
    ["PANTHEON_QUERY_TIMEOUT", "5 fortnights", "queryTimeout is not a duration", cacheSettings],
    ["PANTHEON_WARM_BYTES", "-1", "warmBytes must be a whole number of bytes", cacheSettings],
    ["PANTHEON_MAX_TOKENS", "1.5", "maxTokens must be a whole number of tokens", cacheSettings],
    ["PANTHEON_EMBED_DIMENSIONS", "abc", "dimensions must be a whole number of at least 1", embedder],
    ["PANTHEON_EMBED_CACHE_BYTES", "32MB", "cacheBytes must be a whole number of at least 0", embedder],
    ["PANTHEON_OLLAMA_URL", "localhost:11434", "url must be an http:// or https:// URL", embedder],
    ["PANTHEON_EMBED_URL", "localhost:8000", "url must be an http:// or https:// URL", embedder],
    // PANTHEON_EMBED_MODEL, _API_KEY, _BATCH and _TIMEOUT are read with PANTHEON_EMBED_URL only: test/OpenAIEmbedder.test.ts.
    ["PANTHEON_DB_MAX_CONNECTIONS", "1", "maxConnections must be a whole number of at least 2", postgresConfig],
    ["PANTHEON_DB_CHANNEL", "c".repeat(64), "channel must be at most 63 bytes", postgresConfig]
  ] as Array<[string, string, string, Effect.Effect<unknown, unknown>]>)("%s=%j is refused with InvalidConfig naming the variable and the field", ([env, value, reason, effect]) =>
    Effect.gen(function* () {
      const error = yield* refusedWith({ [env]: value }, effect)
      expect(error._tag).toBe("InvalidConfig")
      expect(error.env).toBe(env)
      expect(error.message.startsWith(`Invalid configuration: ${env}: ${reason}`), error.message).toBe(true)
      expect(error.message.endsWith(` (got ${JSON.stringify(value)})`), error.message).toBe(true)
    }))

  it.effect.each([["PANTHEON_DATABASE_URL"], ["DATABASE_URL"]])("%s that is not a postgres:// URL is refused without repeating it (it may hold a password)", ([env]) =>
    Effect.gen(function* () {
      const error = yield* refusedWith({ [env]: "mysql://app:hunter2@db/prod" }, databaseUrlConfig)
      expect(error.message).toBe(`Invalid configuration: ${env}: url must be a postgres:// or postgresql:// URL`)
      expect(error.message).not.toContain("hunter2")
    }))

  it.effect("an empty or blank variable counts as unset: the default applies", () =>
    Effect.gen(function* () {
      const blank = { PANTHEON_DATA_DIR: "", PANTHEON_OLLAMA_URL: " ", PANTHEON_OLLAMA_MODEL: "", PANTHEON_EMBED_DIMENSIONS: "", PANTHEON_CACHE_TTL: "", PANTHEON_DATABASE_URL: "", PANTHEON_DB_CHANNEL: "" }
      expect(yield* withEnv(blank, dataDirConfig)).toBe("./.pantheon/data")
      const embedding = yield* withEnv(blank, EmbedderConfig)
      expect(Option.isNone(embedding.ollamaUrl)).toBe(true)
      expect(embedding.ollamaModel).toBe("nomic-embed-text")
      expect(Option.isNone(embedding.dimensions)).toBe(true) // feature hashing then takes its 256
      expect(Duration.toMillis((yield* withEnv(blank, cacheSettings)).ttl)).toBe(60_000)
      expect(Option.isNone(yield* withEnv(blank, databaseUrlConfig))).toBe(true)
      expect((yield* withEnv(blank, postgresConfig)).channel).toBe("pantheon_changes")
    }))

  it.effect("a good value is read: PANTHEON_DATABASE_URL before DATABASE_URL, the model name as it is", () =>
    Effect.gen(function* () {
      const url = yield* withEnv({ PANTHEON_DATABASE_URL: "postgres://a@h/db", DATABASE_URL: "postgres://b@h/db" }, databaseUrlConfig)
      expect(Redacted.value(Option.getOrThrow(url))).toBe("postgres://a@h/db")
      expect((yield* withEnv({ PANTHEON_OLLAMA_MODEL: "all-minilm" }, EmbedderConfig)).ollamaModel).toBe("all-minilm")
    }))

  it.effect("the Effect API's layers fail with the documented InvalidConfig, not a ConfigError", () =>
    Effect.gen(function* () {
      const adapter = yield* refusedWith({ PANTHEON_CACHE_TTL: "-5" }, Effect.scoped(Layer.build(PersistenceAdapterLive().pipe(Layer.provide(managersBackend([]))))))
      expect(adapter._tag).toBe("InvalidConfig")
      expect(adapter.message).toBe('Invalid configuration: PANTHEON_CACHE_TTL: ttl must not be negative (got "-5")')
      const store = yield* refusedWith({ PANTHEON_DATABASE_URL: "localhost" }, Effect.scoped(Layer.build(StoreLive())))
      expect(store._tag).toBe("InvalidConfig")
      expect(store.env).toBe("PANTHEON_DATABASE_URL")
    }))

  it.effect("cacheConfigFromEnv, for Config code, fails at the variable with the same message", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(withEnv({ PANTHEON_CACHE_CAPACITY: "abc" }, cacheConfigFromEnv))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(String(Exit.isFailure(exit) && exit.cause)).toContain('PANTHEON_CACHE_CAPACITY: capacity must be a whole number of at least 1 (got "abc")')
    }))
})
