/** Ollama's `/api/embed`: semantic vectors from a local model server (model and URL from config). */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Duration, Effect, Schema } from "effect"
import { EmbedError } from "../domain/errors.js"
import type { EmbedderShape } from "./Embedder.js"
import { normalize } from "./vector.js"

export interface OllamaConfig {
  /** Base URL of the Ollama server (default http://127.0.0.1:11434). */
  readonly url?: string
  /** The embedding model (default nomic-embed-text). */
  readonly model?: string
  /** Longest one call may take (default 30 s). */
  readonly timeout?: Duration.DurationInput
}

const EmbedResponse = Schema.Struct({ embeddings: Schema.Array(Schema.Array(Schema.Number)) })

/** The embedder; its dimensions are read from the server's answer to a first probe, which must succeed. */
export const ollama = (config: OllamaConfig = {}) =>
  Effect.gen(function* () {
    const url = (config.url ?? "http://127.0.0.1:11434").replace(/\/+$/, "")
    const modelName = config.model ?? "nomic-embed-text"
    const model = `ollama:${modelName}`
    const http = (yield* HttpClient.HttpClient).pipe(HttpClient.filterStatusOk)
    let calls = 0
    let embedded = 0
    const call = (texts: ReadonlyArray<string>) =>
      HttpClientRequest.post(`${url}/api/embed`).pipe(
        HttpClientRequest.bodyJson({ model: modelName, input: texts }),
        Effect.flatMap((request) => {
          calls++
          embedded += texts.length
          return http.execute(request)
        }),
        Effect.flatMap(HttpClientResponse.schemaBodyJson(EmbedResponse)),
        Effect.scoped,
        Effect.timeout(config.timeout ?? Duration.seconds(30)),
        Effect.mapError((cause) =>
          new EmbedError({ model, reason: cause._tag === "TimeoutException" ? "timed out" : "message" in cause ? String(cause.message) : cause._tag, cause })
        ),
        Effect.flatMap(({ embeddings }) =>
          embeddings.length === texts.length
            ? Effect.succeed(embeddings.map((e) => normalize(Float32Array.from(e))))
            : Effect.fail(new EmbedError({ model, reason: `asked for ${texts.length} embeddings, got ${embeddings.length}` }))
        )
      )
    const [probe] = yield* call(["dimension probe"])
    const dimensions = probe!.length
    const embed = (texts: ReadonlyArray<string>) =>
      texts.length === 0
        ? Effect.succeed([])
        : Effect.flatMap(call(texts), (vectors) =>
            vectors.every((v) => v.length === dimensions)
              ? Effect.succeed(vectors)
              : Effect.fail(new EmbedError({ model, reason: `the model changed dimensions (expected ${dimensions})` }))
          )
    return { model, dimensions, embed, stats: Effect.sync(() => ({ hits: 0, misses: 0, entries: 0, bytes: 0, calls, embedded })) } satisfies EmbedderShape
  })
