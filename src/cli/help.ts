/**
 * The command line's help: plain text (no escape codes, so it reads the same in a terminal, a pipe
 * or a file), the bin's own name in every usage line, every option with what it does, which are
 * optional, and their defaults. The option texts here are also the parser's descriptions
 * (commands.ts), so the two cannot drift; a test checks that the help names every option the
 * parser accepts.
 */

/** The bin's name, as a user types it. */
export const BIN = "pantheon-persistence"

export interface OptionDoc {
  /** As it is typed, e.g. `--limit <n>`. */
  readonly usage: string
  readonly doc: string
}

export interface CommandDoc {
  /** The subcommand ("" for the main job). */
  readonly name: string
  /** Its arguments and options as the usage line shows them (brackets: optional; `...`: repeatable). */
  readonly synopsis: string
  readonly summary: string
  readonly options: ReadonlyArray<OptionDoc>
}

/** Options of every command. */
export const common = {
  dataDir: {
    usage: "--data-dir <dir>",
    doc: "Where the embedded store keeps its data (default: $PANTHEON_DATA_DIR, else ./.pantheon/data; memory:// keeps nothing). Ignored when PANTHEON_DATABASE_URL names a PostgreSQL server."
  },
  lockTimeout: {
    usage: "--lock-timeout <seconds>",
    doc: "How long to wait while another process uses the data directory (default 10; 0: fail at once)."
  },
  verbose: { usage: "--verbose", doc: "On a failure, print its whole cause; show debug logs." },
  quiet: { usage: "--quiet", doc: "Print only the final line of long work (no progress)." },
  help: { usage: "-h, --help", doc: "Show this help and exit." },
  version: { usage: "--version", doc: "Print the version and exit." }
} as const satisfies Record<string, OptionDoc>

/** The options of each subcommand. */
export const options = {
  ingestFile: { usage: "<file.jsonl>", doc: "A JSONL file: one {id, text, timestamp, metadata} object a line." },
  ingestSource: { usage: "--source <id>", doc: "The source to ingest into; registered when new (required)." },
  compileSource: { usage: "--source <id>", doc: "A source to compile from; repeat it for more (required, at least one)." },
  compileText: {
    usage: "--text <text>",
    doc: "A question or text to search the sources with; repeat it for more (optional: without it, the newest entries seed the search)."
  },
  compileLimit: {
    usage: "--limit <n>",
    doc: "Entries each relevance search returns per source (default 20, at least 1); the context keeps at most 2 × n × sources messages, the most relevant."
  },
  compileMaxTokens: {
    usage: "--max-tokens <n>",
    doc: "A token budget: the most relevant messages that fit in n tokens (cl100k_base), shown in time order (default: $PANTHEON_MAX_TOKENS, else none)."
  },
  compileJson: { usage: "--json", doc: "Print the messages as a JSON array instead of one line each." },
  metricsPort: { usage: "--metrics-port <port>", doc: "Port of /metrics and /healthz on 127.0.0.1 (default 9464; 0: any free port)." }
} as const satisfies Record<string, OptionDoc>

export const commands: ReadonlyArray<CommandDoc> = [
  {
    name: "",
    synopsis: "",
    summary: "Ingest the bundled sample corpus on the first run, compile context for a sample question twice, and show what the caches did.",
    options: []
  },
  { name: "sources", synopsis: "sources", summary: "List the sources in the store and their entry counts.", options: [] },
  {
    name: "ingest",
    synopsis: "ingest <file.jsonl> --source <id>",
    summary: "Ingest a JSONL file into a source, all or nothing.",
    options: [options.ingestFile, options.ingestSource]
  },
  {
    name: "compile",
    synopsis: "compile --source <id>... [--text <text>]... [--limit <n>] [--max-tokens <n>] [--json]",
    summary: "Compile context from sources and print it.",
    options: [options.compileSource, options.compileText, options.compileLimit, options.compileMaxTokens, options.compileJson]
  },
  { name: "stats", synopsis: "stats", summary: "Show what the store holds, and the sources that do not answer within queryTimeout.", options: [] },
  {
    name: "serve",
    synopsis: "serve [--metrics-port <port>]",
    summary: "Serve the metrics endpoint (Prometheus /metrics, /healthz) until Ctrl-C. Needs @effect/opentelemetry and @opentelemetry/exporter-prometheus.",
    options: [options.metricsPort]
  }
]

const WIDTH = 100

/** `text` in lines of at most `width` characters (a longer word stands alone). */
const wrap = (text: string, width: number): Array<string> => {
  const lines: Array<string> = []
  let line = ""
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else line = line === "" ? word : `${line} ${word}`
  }
  return [...lines, line]
}

/** Two columns; a first column too wide for its place stands on a line of its own. */
const table = (rows: ReadonlyArray<readonly [string, string]>): Array<string> => {
  const left = Math.min(28, Math.max(...rows.map(([l]) => l.length))) + 2
  const indent = " ".repeat(2 + left)
  return rows.flatMap(([l, r]) => {
    const [first = "", ...rest] = wrap(r, WIDTH - indent.length)
    const head = l.length + 2 > left ? [`  ${l}`, `${indent}${first}`] : [`  ${l.padEnd(left)}${first}`]
    return [...head, ...rest.map((t) => `${indent}${t}`)]
  })
}

const commonRows = Object.values(common).map((o) => [o.usage, o.doc] as const)

/** The help of the whole command line, or of one subcommand; undefined for a name that is not one. */
export const helpText = (version: string, name = ""): string | undefined => {
  const command = commands.find((c) => c.name === name)
  if (command === undefined) return undefined
  if (name === "") {
    return [
      `${BIN} ${version}: compiles LLM context from named store sources, and caches what it can.`,
      "",
      `Usage: ${BIN} [command] [options]`,
      "",
      ...wrap(`With no command: ${command.summary.charAt(0).toLowerCase()}${command.summary.slice(1)}`, WIDTH),
      "",
      "Commands:",
      ...table(commands.filter((c) => c.name !== "").map((c) => [c.synopsis, c.summary] as const)),
      "",
      "Options of every command:",
      ...table(commonRows),
      "",
      ...wrap(
        `\`${BIN} <command> --help\` shows a command's options. The environment (PANTHEON_*) configures the caches and the stores: PANTHEON_DATABASE_URL selects a PostgreSQL server; the README lists every variable.`,
        WIDTH
      ),
      ""
    ].join("\n")
  }
  return [
    `Usage: ${BIN} ${command.synopsis} [options]`,
    "",
    ...wrap(command.summary, WIDTH),
    "",
    "Options:",
    ...table([...command.options.map((o) => [o.usage, o.doc] as const), ...commonRows]),
    ""
  ].join("\n")
}

/** The subcommand a command line names (its first word that is one), "" for none. */
export const commandOf = (argv: ReadonlyArray<string>): string =>
  argv.find((arg) => commands.some((c) => c.name !== "" && c.name === arg)) ?? ""
