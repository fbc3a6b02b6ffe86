/**
 * Every metric of the project (Effect `Metric`, exported by the metrics endpoint). Cache metrics carry
 * the label `cache` (`managers`, `catalog`, `embeddings`).
 */
import { Metric, MetricBoundaries } from "effect"

const durationBoundaries = MetricBoundaries.exponential({ start: 0.05, factor: 2, count: 20 })

export const cacheHits = Metric.counter("pantheon_cache_hits_total", { description: "Requests served without waiting for any load", incremental: true })
export const cacheMisses = Metric.counter("pantheon_cache_misses_total", { description: "Requests that waited for a load", incremental: true })
export const cacheLoads = Metric.counter("pantheon_cache_loads_total", { description: "Loads run (catalog reads, manager opens)", incremental: true })
export const cacheLoadFailures = Metric.counter("pantheon_cache_load_failures_total", { description: "Loads that failed", incremental: true })
export const cacheEvictions = Metric.counter("pantheon_cache_evictions_total", { description: "Entries removed or refused for capacity", incremental: true })
export const cacheExpirations = Metric.counter("pantheon_cache_expirations_total", { description: "Entries removed by the sweep once they can no longer be served", incremental: true })
export const cacheInvalidations = Metric.counter("pantheon_cache_invalidations_total", { description: "Entries dropped by invalidate, invalidateAll or a catalog change", incremental: true })
export const cacheRefreshes = Metric.counter("pantheon_cache_refreshes_total", { description: "Reloads of an entry that was still served (refresh-ahead, refresh)", incremental: true })
export const cacheStaleServed = Metric.counter("pantheon_cache_stale_served_total", { description: "Requests served a stale manager because reloading it failed", incremental: true })
export const cacheSize = Metric.gauge("pantheon_cache_size", { description: "Entries held" })
export const cacheLoadDuration = Metric.histogram("pantheon_cache_load_duration_ms", durationBoundaries, "Duration of loads in milliseconds")

export const compileDuration = Metric.histogram("pantheon_compile_duration_ms", durationBoundaries, "Duration of compile in milliseconds")
export const compileTotal = Metric.counter("pantheon_compile_total", { description: "Compiles, by outcome", incremental: true })
export const compileSkippedSources = Metric.counter("pantheon_compile_skipped_sources_total", { description: "Sources skipped because their manager failed to load or query", incremental: true })
export const compileInvalidEntries = Metric.counter("pantheon_compile_invalid_entries_total", { description: "Entries skipped for a missing or unparseable timestamp", incremental: true })

export const embedCacheHits = Metric.counter("pantheon_embed_cache_hits_total", { description: "Texts whose embedding came from the cache", incremental: true })
export const embedCacheMisses = Metric.counter("pantheon_embed_cache_misses_total", { description: "Texts that had to be embedded", incremental: true })

/** The cache metrics with the label `cache` set, for one cache (`managers`, `catalog`, `embeddings`). */
export const forCache = (cache: string) => {
  const tag = <M extends Metric.Metric<any, any, any>>(m: M): M => Metric.tagged(m, "cache", cache) as M
  return {
    hits: tag(cacheHits),
    misses: tag(cacheMisses),
    loads: tag(cacheLoads),
    loadFailures: tag(cacheLoadFailures),
    evictions: tag(cacheEvictions),
    expirations: tag(cacheExpirations),
    invalidations: tag(cacheInvalidations),
    refreshes: tag(cacheRefreshes),
    staleServed: tag(cacheStaleServed),
    size: tag(cacheSize),
    loadDuration: tag(cacheLoadDuration)
  }
}
export type CacheMetrics = ReturnType<typeof forCache>
