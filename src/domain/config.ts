import { Config, ConfigError, Duration, Either, Option, ParseResult, Schema } from "effect"
import { InvalidConfig } from "./errors.js"

/**
 * Durations are accepted as milliseconds (a number, or a numeric string from the environment),
 * as Effect duration strings ("5 seconds", "250 millis") or as `Duration` values.
 */
export type DurationLike = number | string | Duration.Duration

/**
 * What callers pass: every field optional. Each field's meaning, unit, default and trade-off is
 * below, and the same text (from `fields`) is the README's configuration table.
 */
export interface CacheConfigInput {
  /**
   * How long a loaded catalog and a loaded store manager are served before they are reloaded.
   * Milliseconds or a duration string; default 60 seconds. Longer: fewer loads, later pick-up of
   * changes that are not broadcast.
   */
  readonly ttl?: DurationLike
  /**
   * Most store managers held at once (entries); default 64. Past it, LRU picks the victim until
   * W-TinyLFU has shown it hits more; then a rarely used source is not let in at the price of a
   * popular one.
   */
  readonly capacity?: number
  /** The seed-era name of `capacity` (entries); give one or the other. */
  readonly maxSize?: number
  /**
   * How long a failed load is remembered, so callers get the failure at once instead of hammering
   * a store that is down. Milliseconds or a duration string; default 1 second; 0: every caller retries.
   */
  readonly failureTtl?: DurationLike
  /**
   * Fraction of `ttl` after which an access reloads the manager in the background while callers
   * keep the current one. A number in (0, 1]; default 0.8; 1 turns refresh-ahead off.
   */
  readonly refreshAhead?: number
  /**
   * After `ttl`, how long the last good manager may still be served while reloading it fails (as
   * HTTP's stale-if-error). Milliseconds or a duration string; default 5 minutes; 0: never serve
   * stale. Expired entries stay in memory this long.
   */
  readonly staleIfError?: DurationLike
  /**
   * How often a background fiber removes entries that can no longer be served, so memory does not
   * wait for an access. Milliseconds or a duration string; default 15 seconds.
   */
  readonly sweepInterval?: DurationLike
  /**
   * Longest a catalog read or a manager load may take before it fails with `CatalogUnavailable` /
   * `StoreUnavailable`. Milliseconds or a duration string; default 30 seconds.
   */
  readonly loadTimeout?: DurationLike
  /** Most manager loads running at once, across all compiles (entries); default 8. */
  readonly loadConcurrency?: number
  /**
   * Longest one store query of a compile may take (recent or relevance, on one source) before it
   * fails with `StoreQueryError`, and the source is skipped (or fails the compile, per
   * `onSourceError`). Milliseconds or a duration string; default 5 seconds.
   */
  readonly queryTimeout?: DurationLike
  /**
   * Bytes the manager cache may hold in warm managers (SQL sources whose entries and vectors are
   * kept in memory, so a new question is answered without the database); default 256 MiB; 0 serves
   * every source from SQL. A source that would take more than half of it is served from SQL.
   */
  readonly warmBytes?: number
  /**
   * The token budget of a compile when the request gives none (`maxTokens`): its messages, most
   * relevant first, never total more tokens than this (counted with gpt-tokenizer's cl100k_base,
   * each message's framing included). Tokens; default 0: no token budget, only the entry count.
   */
  readonly maxTokens?: number
}

/** The validated configuration of the caches. Each field's default and trade-off is on `fields`. */
export interface CacheConfig {
  readonly ttl: Duration.Duration
  readonly capacity: number
  readonly failureTtl: Duration.Duration
  readonly refreshAhead: number
  readonly staleIfError: Duration.Duration
  readonly sweepInterval: Duration.Duration
  readonly loadTimeout: Duration.Duration
  readonly loadConcurrency: number
  readonly queryTimeout: Duration.Duration
  readonly warmBytes: number
  readonly maxTokens: number
}

const DurationValue = Schema.Union(Schema.Number, Schema.String, Schema.DurationFromSelf)

const toDuration = (value: number | string | Duration.Duration): Option.Option<Duration.Duration> => {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? Option.some(Duration.millis(value)) : Option.none()
  if (typeof value === "string") {
    const text = value.trim()
    if (/^\d+(\.\d+)?$/.test(text)) return Option.some(Duration.millis(Number(text)))
    return Duration.decodeUnknown(text as Duration.DurationInput)
  }
  return Option.some(value)
}

const duration = (options: { readonly positive: boolean }) =>
  DurationValue.pipe(
    Schema.transformOrFail(Schema.DurationFromSelf, {
      strict: true,
      decode: (input, _, ast) =>
        typeof input === "number" && input < 0
          ? Either.left(new ParseResult.Type(ast, input, "must not be negative"))
          : Option.match(toDuration(input), {
          onNone: () =>
            Either.left(new ParseResult.Type(ast, input, "is not a duration: use milliseconds or a string such as \"5 seconds\"")),
          onSome: (d) =>
            !Duration.isFinite(d)
              ? Either.left(new ParseResult.Type(ast, input, "must be finite"))
              : options.positive && Duration.toMillis(d) <= 0
                ? Either.left(new ParseResult.Type(ast, input, "must be greater than 0"))
                : Either.right(d)
        }),
      encode: (d) => Either.right(Duration.toMillis(d))
    })
  )

const positiveInt = Schema.Number.pipe(
  Schema.filter((n) => (Number.isInteger(n) && n >= 1) || "must be a whole number of at least 1")
)

/**
 * The fields of `CacheConfig`: schema, default and the documentation that the README's table repeats.
 * A field's doc says its unit, its default and its trade-off.
 */
export const fields = {
  ttl: {
    schema: duration({ positive: true }),
    default: Duration.seconds(60),
    env: "PANTHEON_CACHE_TTL",
    doc: "How long a loaded catalog and a loaded store manager are served before they are reloaded. Longer: fewer loads, later pick-up of changes that are not broadcast."
  },
  capacity: {
    schema: positiveInt,
    default: 64,
    env: "PANTHEON_CACHE_CAPACITY",
    doc: "Most store managers held at once (alias `maxSize`). Past it, LRU picks the victim until W-TinyLFU has shown it hits more; then a rarely used source is not let in at the price of a popular one."
  },
  failureTtl: {
    schema: duration({ positive: false }),
    default: Duration.seconds(1),
    env: "PANTHEON_CACHE_FAILURE_TTL",
    doc: "How long a failed load is remembered (callers get the failure at once instead of hammering a store that is down). 0: every caller retries."
  },
  refreshAhead: {
    schema: Schema.Number.pipe(
      Schema.filter((n) => (Number.isFinite(n) && n > 0 && n <= 1) || "must be a fraction greater than 0 and at most 1")
    ),
    default: 0.8,
    env: "PANTHEON_CACHE_REFRESH_AHEAD",
    doc: "Fraction of `ttl` after which an access reloads the manager in the background while callers keep the current one. 1 turns refresh-ahead off."
  },
  staleIfError: {
    schema: duration({ positive: false }),
    default: Duration.minutes(5),
    env: "PANTHEON_CACHE_STALE_IF_ERROR",
    doc: "After `ttl`, how long the last good manager may still be served while reloading it fails (as HTTP's stale-if-error). Expired entries stay in memory this long. 0: never serve stale."
  },
  sweepInterval: {
    schema: duration({ positive: true }),
    default: Duration.seconds(15),
    env: "PANTHEON_CACHE_SWEEP_INTERVAL",
    doc: "How often a background fiber removes entries that can no longer be served, so memory does not wait for an access."
  },
  loadTimeout: {
    schema: duration({ positive: true }),
    default: Duration.seconds(30),
    env: "PANTHEON_LOAD_TIMEOUT",
    doc: "Longest a catalog read or a manager load may take before it fails with `StoreUnavailable` / `CatalogUnavailable`."
  },
  loadConcurrency: {
    schema: positiveInt,
    default: 8,
    env: "PANTHEON_LOAD_CONCURRENCY",
    doc: "Most manager loads running at once, across all compiles. More: a cold start opens more sources in parallel; fewer: less load on a store that is slow to open."
  },
  queryTimeout: {
    schema: duration({ positive: true }),
    default: Duration.seconds(5),
    env: "PANTHEON_QUERY_TIMEOUT",
    doc: "Longest one store query of a compile may take before it fails with `StoreQueryError` and its source is skipped (or fails the compile, per `onSourceError`). A query that never settles cannot hang a compile."
  },
  warmBytes: {
    schema: Schema.Number.pipe(Schema.filter((n) => (Number.isInteger(n) && n >= 0) || "must be a whole number of bytes, 0 or more")),
    default: 256 * 1024 * 1024,
    env: "PANTHEON_WARM_BYTES",
    doc: "Bytes the manager cache may hold in warm managers (a SQL source's entries and vectors in memory: new questions answered without the database). 0: every source is served from SQL. A source that would take more than half of it is served from SQL."
  },
  maxTokens: {
    schema: Schema.Number.pipe(Schema.filter((n) => (Number.isInteger(n) && n >= 0) || "must be a whole number of tokens, 0 or more")),
    default: 0,
    env: "PANTHEON_MAX_TOKENS",
    doc: "The token budget of a compile whose request gives none: its messages, most relevant first, never total more (gpt-tokenizer cl100k_base, each message's framing included). 0: no token budget, only the entry count. Smaller: a cheaper prompt, less of the evidence."
  }
} as const

type FieldName = keyof typeof fields

export const defaultCacheConfig: CacheConfig = {
  ttl: fields.ttl.default,
  capacity: fields.capacity.default,
  failureTtl: fields.failureTtl.default,
  refreshAhead: fields.refreshAhead.default,
  staleIfError: fields.staleIfError.default,
  sweepInterval: fields.sweepInterval.default,
  loadTimeout: fields.loadTimeout.default,
  loadConcurrency: fields.loadConcurrency.default,
  queryTimeout: fields.queryTimeout.default,
  warmBytes: fields.warmBytes.default,
  maxTokens: fields.maxTokens.default
}

const knownKeys = new Set<string>([...Object.keys(fields), "maxSize"])

const reasonOf = (error: ParseResult.ParseError): string => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  const message = issue?.message ?? "is invalid"
  return /^(is|must)\b/.test(message) ? message : `must be ${message.replace(/^Expected /, "")}`
}

/** Validates a config; the error names the first field that is wrong and its value. */
export const decodeCacheConfig = (input: unknown = {}): Either.Either<CacheConfig, InvalidConfig> => {
  if (input === undefined || input === null) return Either.right(defaultCacheConfig)
  if (typeof input !== "object" || Array.isArray(input)) {
    return Either.left(new InvalidConfig({ field: "cacheConfig", value: input, reason: "must be an object" }))
  }
  const raw = input as Record<string, unknown>
  for (const key of Object.keys(raw)) {
    if (!knownKeys.has(key) && raw[key] !== undefined) {
      return Either.left(
        new InvalidConfig({ field: key, value: raw[key], reason: `is not a cache option (known: ${[...knownKeys].join(", ")})` })
      )
    }
  }
  if (raw.capacity !== undefined && raw.maxSize !== undefined && raw.capacity !== raw.maxSize) {
    return Either.left(new InvalidConfig({ field: "maxSize", value: raw.maxSize, reason: `conflicts with capacity ${raw.capacity}` }))
  }
  const out: Record<string, unknown> = {}
  for (const name of Object.keys(fields) as Array<FieldName>) {
    const field = fields[name]
    const label = name === "capacity" && raw.capacity === undefined && raw.maxSize !== undefined ? "maxSize" : name
    const value = name === "capacity" ? (raw.capacity ?? raw.maxSize) : raw[name]
    if (value === undefined) {
      out[name] = field.default
      continue
    }
    const decoded = Schema.decodeUnknownEither(field.schema as Schema.Schema<unknown, unknown>)(value)
    if (Either.isLeft(decoded)) {
      return Either.left(new InvalidConfig({ field: label, value, reason: reasonOf(decoded.left) }))
    }
    out[name] = decoded.right
  }
  return Either.right(out as unknown as CacheConfig)
}

/** `CacheConfig` from the environment (`PANTHEON_CACHE_TTL`, …); unset variables take the defaults. */
export const cacheConfigFromEnv: Config.Config<CacheConfig> = Config.all(
  Object.fromEntries(
    (Object.keys(fields) as Array<FieldName>).map((name) => [name, Config.option(Config.string(fields[name].env))])
  ) as Record<FieldName, Config.Config<Option.Option<string>>>
).pipe(
  Config.mapOrFail((values) => {
    const input: Record<string, unknown> = {}
    for (const [name, value] of Object.entries(values)) {
      if (Option.isNone(value)) continue
      // A field whose default is a number reads its variable as one; the durations parse their text.
      input[name] = typeof fields[name as FieldName].default === "number" ? Number(value.value) : value.value
    }
    return Either.mapLeft(decodeCacheConfig(input), (e) =>
      ConfigError.InvalidData([fields[e.field as FieldName]?.env ?? e.field], e.message)
    )
  })
)
