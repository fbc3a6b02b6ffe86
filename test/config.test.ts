import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Either, Exit, Layer } from "effect"
import { decodeCacheConfig, defaultCacheConfig } from "../src/domain/config.js"
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
