/**
 * The metrics a user reads (`Metric.value(Metrics.compileDuration)`, or the endpoint's page), as the
 * package's `Metrics`: every metric of `metrics.ts` and `tagged`, without the helpers the caches
 * report through.
 */
export {
  cacheEvictions,
  cacheExpirations,
  cacheHits,
  cacheInvalidations,
  cacheLoadDuration,
  cacheLoadFailures,
  cacheLoads,
  cacheMisses,
  cacheRefreshes,
  cacheSize,
  cacheStaleServed,
  cacheWeight,
  compileDuration,
  compileInvalidEntries,
  compileSkippedSources,
  compileTokens,
  compileTotal,
  storeQueries,
  tagged,
  warmBytes
} from "./metrics.js"
