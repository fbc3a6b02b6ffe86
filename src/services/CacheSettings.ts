import { Context, Layer } from "effect"
import { type CacheConfig, type CacheConfigInput, cacheConfigFromEnvironment, decodeCacheConfig } from "../domain/config.js"
import type { InvalidConfig } from "../domain/errors.js"

/** The validated cache configuration in the context: from explicit input, or from the environment. */
export class CacheSettings extends Context.Tag("pantheon-persistence/CacheSettings")<CacheSettings, CacheConfig>() {
  /** From explicit input; invalid input fails the layer with `InvalidConfig` naming the field. */
  static readonly layer = (input: CacheConfigInput | CacheConfig = {}): Layer.Layer<CacheSettings, InvalidConfig> =>
    Layer.effect(CacheSettings, decodeCacheConfig(input))
  /** From `PANTHEON_*` environment variables (through `effect/Config`); a bad value fails with `InvalidConfig` naming the variable. */
  static readonly layerFromEnv: Layer.Layer<CacheSettings, InvalidConfig> = Layer.effect(CacheSettings, cacheConfigFromEnvironment)
}
