/**
 * Every metric of the project (Effect `Metric`, exported by the metrics endpoint). Cache metrics carry
 * the label `cache`: `managers`, `catalog`, `embeddings` (hits and misses of the embedding cache are
 * `pantheon_cache_hits_total{cache="embeddings"}` and `..._misses_total`), `results` (SQL query results).
 */
import { Metric, MetricBoundaries, MetricLabel } from "effect"

const durationBoundaries = MetricBoundaries.exponential({ start: 0.05, factor: 2, count: 20 })

export const cacheHits = Metric.counter("pantheon_cache_hits_total", { description: "Requests served without waiting for any load", incremental: true })
export const cacheMisses = Metric.counter("pantheon_cache_misses_total", { description: "Requests that waited for a load (or got a remembered failure)", incremental: true })
export const cacheLoads = Metric.counter("pantheon_cache_loads_total", { description: "Loads run (catalog reads, manager opens, embeddings, queries)", incremental: true })
export const cacheLoadFailures = Metric.counter("pantheon_cache_load_failures_total", { description: "Loads that failed", incremental: true })
export const cacheEvictions = Metric.counter("pantheon_cache_evictions_total", { description: "Entries removed or refused for capacity or weight", incremental: true })
export const cacheExpirations = Metric.counter("pantheon_cache_expirations_total", { description: "Entries removed once they could no longer be served", incremental: true })
export const cacheInvalidations = Metric.counter("pantheon_cache_invalidations_total", { description: "Entries dropped by invalidate, invalidateAll or an event", incremental: true })
export const cacheRefreshes = Metric.counter("pantheon_cache_refreshes_total", { description: "Reloads of an entry that was still held (refresh-ahead, refresh, reload after ttl)", incremental: true })
export const cacheStaleServed = Metric.counter("pantheon_cache_stale_served_total", { description: "Requests served a stale value because reloading it failed", incremental: true })
export const cacheSize = Metric.gauge("pantheon_cache_size", { description: "Entries held" })
export const cacheWeight = Metric.gauge("pantheon_cache_weight", { description: "Total weight of the entries held (bytes for the weighed caches, else entries)" })
export const cacheLoadDuration = Metric.histogram("pantheon_cache_load_duration_ms", durationBoundaries, "Duration of loads in milliseconds")

export const warmBytes = Metric.gauge("pantheon_warm_bytes", { description: "Bytes the cached warm managers hold (entries and vectors in memory)" })
export const storeQueries = Metric.counter("pantheon_store_queries_total", { description: "Queries the SQL stores ran, by where (served: warm, sql); result-cache hits are not counted", incremental: true })

export const compileDuration = Metric.histogram("pantheon_compile_duration_ms", durationBoundaries, "Duration of compile in milliseconds")
export const compileTokens = Metric.histogram(
  "pantheon_compile_tokens",
  MetricBoundaries.exponential({ start: 16, factor: 2, count: 14 }),
  "Tokens of a compile's messages (gpt-tokenizer cl100k_base, with each message's framing)"
)
export const compileTotal = Metric.counter("pantheon_compile_total", { description: "Compiles, by outcome", incremental: true })
export const compileSkippedSources = Metric.counter("pantheon_compile_skipped_sources_total", { description: "Sources skipped because their manager failed to load or query", incremental: true })
export const sourceTimeouts = Metric.counter("pantheon_source_timeouts_total", { description: "Store queries that passed queryTimeout, by source (their compile went on without them)", incremental: true })
export const slowSources = Metric.gauge("pantheon_slow_sources", { description: "Sources whose latest compile had a query past queryTimeout (listed by /healthz and stats)" })
export const compileInvalidEntries = Metric.counter("pantheon_compile_invalid_entries_total", { description: "Entries skipped as invalid: not an object, text or metadata of the wrong type, or a missing or unparseable timestamp", incremental: true })


/** A cache metric with its `cache` label, for reading it (`Metric.value`). */
export const tagged = <Type, In, Out>(metric: Metric.Metric<Type, In, Out>, cache: string) => Metric.tagged(metric, "cache", cache)

/**
 * Updaters of the cache metrics of one cache. They pass one label array, always the same object, so
 * the metric registry resolves each metric once (a fresh array, as `Metric.tagged` makes, costs a
 * registry lookup on every update: a few hundred nanoseconds on a cache hit).
 */
export const forCache = (cache: string) => {
  const tags = [MetricLabel.make("cache", cache)]
  // An update of a counter adds `n`, of a gauge sets it to `n`, of a histogram records `n`.
  const updater = (metric: Metric.Metric<any, number, any>) => (n = 1) => metric.unsafeUpdate(n, tags)
  return {
    hits: updater(cacheHits),
    misses: updater(cacheMisses),
    loads: updater(cacheLoads),
    loadFailures: updater(cacheLoadFailures),
    evictions: updater(cacheEvictions),
    expirations: updater(cacheExpirations),
    invalidations: updater(cacheInvalidations),
    refreshes: updater(cacheRefreshes),
    staleServed: updater(cacheStaleServed),
    size: updater(cacheSize),
    weight: updater(cacheWeight),
    loadDuration: updater(cacheLoadDuration)
  }
}
export type CacheMetrics = ReturnType<typeof forCache>
