import { type ConfigError, Context, Layer } from "effect"
import { type CacheConfig, type CacheConfigInput, cacheConfigFromEnv, decodeCacheConfig } from "../domain/config.js"
import type { InvalidConfig } from "../domain/errors.js"

/** The validated cache configuration in the context: from explicit input, or from the environment. */
export class CacheSettings extends Context.Tag("pantheon-persistence/CacheSettings")<CacheSettings, CacheConfig>() {
  /** From explicit input; invalid input fails the layer with `InvalidConfig` naming the field. */
  static readonly layer = (input: CacheConfigInput | CacheConfig = {}): Layer.Layer<CacheSettings, InvalidConfig> =>
    Layer.effect(CacheSettings, decodeCacheConfig(input))
  /** From `PANTHEON_*` environment variables (through `effect/Config`). */
  static readonly layerFromEnv: Layer.Layer<CacheSettings, ConfigError.ConfigError> = Layer.effect(CacheSettings, cacheConfigFromEnv)
}
