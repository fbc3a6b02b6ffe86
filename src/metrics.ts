/**
 * Every metric of the project (Effect `Metric`, exported by the metrics endpoint). Cache metrics carry
 * the label `cache`: `managers`, `catalog`, `embeddings` (hits and misses of the embedding cache are
 * `pantheon_cache_hits_total{cache="embeddings"}` and `..._misses_total`), `results` (SQL query results).
 */
import { Metric, MetricBoundaries, MetricKey, type MetricKeyType, MetricLabel } from "effect"

const durationBoundaries = MetricBoundaries.exponential({ start: 0.05, factor: 2, count: 20 })

/** The keys of the cache metrics: each cache resolves its own labelled metric of each once (`forCache`). */
const cacheMetricKeys = {
  hits: MetricKey.counter("pantheon_cache_hits_total", { description: "Requests served without waiting for any load", incremental: true }),
  misses: MetricKey.counter("pantheon_cache_misses_total", { description: "Requests that waited for a load (or got a remembered failure)", incremental: true }),
  loads: MetricKey.counter("pantheon_cache_loads_total", { description: "Loads run (catalog reads, manager opens, embeddings, queries)", incremental: true }),
  loadFailures: MetricKey.counter("pantheon_cache_load_failures_total", { description: "Loads that failed", incremental: true }),
  evictions: MetricKey.counter("pantheon_cache_evictions_total", { description: "Entries removed or refused for capacity or weight", incremental: true }),
  expirations: MetricKey.counter("pantheon_cache_expirations_total", { description: "Entries removed once they could no longer be served", incremental: true }),
  invalidations: MetricKey.counter("pantheon_cache_invalidations_total", { description: "Entries dropped by invalidate, invalidateAll or an event", incremental: true }),
  refreshes: MetricKey.counter("pantheon_cache_refreshes_total", { description: "Reloads of an entry that was still held (refresh-ahead, refresh, reload after ttl)", incremental: true }),
  staleServed: MetricKey.counter("pantheon_cache_stale_served_total", { description: "Requests served a stale value because reloading it failed", incremental: true }),
  size: MetricKey.gauge("pantheon_cache_size", { description: "Entries held" }),
  weight: MetricKey.gauge("pantheon_cache_weight", { description: "Total weight of the entries held (bytes for the weighed caches, else entries)" }),
  loadDuration: MetricKey.histogram("pantheon_cache_load_duration_ms", durationBoundaries, "Duration of loads in milliseconds")
}
export const cacheHits: Metric.Metric.Counter<number> = Metric.fromMetricKey(cacheMetricKeys.hits)
export const cacheMisses: Metric.Metric.Counter<number> = Metric.fromMetricKey(cacheMetricKeys.misses)
export const cacheLoads: Metric.Metric.Counter<number> = Metric.fromMetricKey(cacheMetricKeys.loads)
export const cacheLoadFailures: Metric.Metric.Counter<number> = Metric.fromMetricKey(cacheMetricKeys.loadFailures)
export const cacheEvictions: Metric.Metric.Counter<number> = Metric.fromMetricKey(cacheMetricKeys.evictions)
export const cacheExpirations: Metric.Metric.Counter<number> = Metric.fromMetricKey(cacheMetricKeys.expirations)
export const cacheInvalidations: Metric.Metric.Counter<number> = Metric.fromMetricKey(cacheMetricKeys.invalidations)
export const cacheRefreshes: Metric.Metric.Counter<number> = Metric.fromMetricKey(cacheMetricKeys.refreshes)
export const cacheStaleServed: Metric.Metric.Counter<number> = Metric.fromMetricKey(cacheMetricKeys.staleServed)
export const cacheSize: Metric.Metric.Gauge<number> = Metric.fromMetricKey(cacheMetricKeys.size)
export const cacheWeight: Metric.Metric.Gauge<number> = Metric.fromMetricKey(cacheMetricKeys.weight)
export const cacheLoadDuration = Metric.fromMetricKey(cacheMetricKeys.loadDuration)

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
 * Updaters of the cache metrics of one cache. Each resolves its labelled metric in the registry
 * once, when the cache is built: `Metric.unsafeUpdate` looks the labels up on every update (a
 * `WeakMap` read even with one label array kept, 20-30 ns on a cache hit of 300, bench w4).
 */
export const forCache = (cache: string) => {
  const tags = [MetricLabel.make("cache", cache)]
  const labelled = <Type extends MetricKeyType.MetricKeyType<any, any>>(key: MetricKey.MetricKey<Type>) =>
    Metric.globalMetricRegistry.get(MetricKey.taggedWithLabels(key, tags))
  // An update of a counter adds `n`, of a gauge sets it to `n`, of a histogram records `n`.
  const updater = (hook: { update(n: number): void }) => (n = 1) => hook.update(n)
  return {
    hits: updater(labelled(cacheMetricKeys.hits)),
    misses: updater(labelled(cacheMetricKeys.misses)),
    loads: updater(labelled(cacheMetricKeys.loads)),
    loadFailures: updater(labelled(cacheMetricKeys.loadFailures)),
    evictions: updater(labelled(cacheMetricKeys.evictions)),
    expirations: updater(labelled(cacheMetricKeys.expirations)),
    invalidations: updater(labelled(cacheMetricKeys.invalidations)),
    refreshes: updater(labelled(cacheMetricKeys.refreshes)),
    staleServed: updater(labelled(cacheMetricKeys.staleServed)),
    size: updater(labelled(cacheMetricKeys.size)),
    weight: updater(labelled(cacheMetricKeys.weight)),
    loadDuration: updater(labelled(cacheMetricKeys.loadDuration))
  }
}
export type CacheMetrics = ReturnType<typeof forCache>
