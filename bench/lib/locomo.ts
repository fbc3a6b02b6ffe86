/**
 * LoCoMo (Maharana et al., ACL 2024, "Evaluating Very Long-Term Conversational Memory of LLM
 * Agents"), read from a directory the caller gives (`--locomo <dir>`): never copied into this
 * repository. One conversation a source, one turn an entry (the speaker as `displayName`, the
 * session's date as the time, a turn's image as its caption, appended as the benchmark gives it).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import type { NewEntry } from "../../src/domain/schemas.js"

export interface Question {
  readonly question: string
  readonly evidence: ReadonlyArray<string>
  readonly category: 1 | 2 | 3 | 4
}

export interface Conversation {
  readonly id: string
  readonly entries: ReadonlyArray<NewEntry & { readonly metadata: { readonly displayName: string; readonly diaId: string } }>
  readonly questions: ReadonlyArray<Question>
}

const MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"]

/** "1:56 pm on 8 May, 2023" → epoch milliseconds (UTC). */
export const sessionTime = (text: string): number => {
  const m = /^(\d{1,2}):(\d{2})\s*(am|pm) on (\d{1,2}) (\w+),? (\d{4})$/i.exec(text.trim())
  const month = m === null ? -1 : MONTHS.indexOf(m[5]!.toLowerCase())
  if (m === null || month < 0) throw new Error(`LoCoMo: unreadable session date ${JSON.stringify(text)}`)
  const hours = (Number(m[1]) % 12) + (m[3]!.toLowerCase() === "pm" ? 12 : 0)
  return Date.UTC(Number(m[6]), month, Number(m[4]), hours, Number(m[2]))
}

/** The conversations of a LoCoMo directory (each `*.json` one sample), with questions of categories 1-4. */
export const readLocomo = (dir: string): Array<Conversation> => {
  if (!existsSync(dir)) throw new Error(`LoCoMo: no directory ${dir}`)
  const files = readdirSync(dir).filter((f) => f.endsWith(".json")).sort()
  if (files.length === 0) throw new Error(`LoCoMo: no .json conversation in ${dir}`)
  return files.map((file) => {
    const sample = JSON.parse(readFileSync(join(dir, file), "utf8"))
    const talk = sample.conversation ?? sample
    const id = `locomo-${file.replace(/\.json$/, "")}`
    const sessions = Object.keys(talk).filter((k) => /^session_\d+$/.test(k)).map((k) => Number(k.slice(8))).sort((a, b) => a - b)
    const entries = sessions.flatMap((s) => {
      const start = sessionTime(talk[`session_${s}_date_time`])
      return (talk[`session_${s}`] as Array<{ speaker: string; dia_id: string; text: string; blip_caption?: string }>).map((turn, i) => ({
        id: `${id}:${turn.dia_id}`,
        text: turn.blip_caption ? `${turn.text} [shares ${turn.blip_caption}]` : turn.text,
        timestamp: start + i * 1000,
        metadata: { displayName: turn.speaker, diaId: turn.dia_id }
      }))
    })
    const questions = (sample.qa as Array<{ question: string; evidence: Array<string>; category: number }>)
      .filter((q) => q.category >= 1 && q.category <= 4)
      .map((q) => ({ question: q.question, evidence: q.evidence.map((e) => e.trim()), category: q.category as Question["category"] }))
    return { id, entries, questions }
  })
}
