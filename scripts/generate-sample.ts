/**
 * Writes the bundled sample corpus (data/sample/*.jsonl): four sources of an agent team's week,
 * deterministic, so the main job prints the same context on every machine.
 * Run: npx tsx scripts/generate-sample.ts
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"

const start = Date.parse("2025-06-02T08:00:00Z")
let seed = 7
const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff)
const pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(random() * xs.length)]!

const people = ["Ana", "Ben", "Chloé", "Dev", "Emeka"]
const topics = [
  ["the checkout service", "p99 latency on checkout went from 180 ms to 900 ms after the last deploy"],
  ["the search index", "the nightly reindex job runs out of memory on the product catalog"],
  ["the billing migration", "the billing database migration locks the invoices table for minutes"],
  ["the mobile release", "the iOS build fails on the new push-notification entitlement"],
  ["onboarding emails", "welcome emails go out twice when a user signs up with Google"],
  ["the data warehouse", "the warehouse sync drops rows whose timestamps are in a non-UTC zone"]
] as const
const chatLines = [
  (_t: string, d: string) => `Heads up: ${d}.`,
  (t: string) => `Can someone pair with me on ${t} this afternoon?`,
  (t: string) => `I rolled back ${t}; metrics are recovering.`,
  (t: string) => `Root cause for ${t} looks like a missing index.`,
  (t: string) => `Do we have a runbook for ${t}? I could not find one.`,
  (t: string) => `Postmortem draft for ${t} is in the shared folder.`,
  (t: string) => `Customer support is asking for an ETA on ${t}.`
]
const assistantLines = [
  (t: string) => `I compared the last three deploys of ${t}: the regression started with the connection-pool change.`,
  (t: string) => `Summary so far on ${t}: cause identified, fix in review, rollout planned for tomorrow.`,
  (t: string) => `I opened a task to add an alert on ${t} so we hear about it before customers do.`
]
const thoughts = [(t: string) => `The pattern on ${t} resembles last month's pool exhaustion; check max connections first.`]

const lines: Record<string, Array<object>> = { "chat-sessions": [], "agent-tasks": [], "user-preferences": [], "system-logs": [] }
let clock = start
const tick = () => (clock += Math.floor(60_000 + random() * 20 * 60_000))

for (let i = 0; i < 140; i++) {
  const [topic, detail] = pick(topics)
  const ts = tick()
  const r = random()
  if (r < 0.62) {
    const who = pick(people)
    lines["chat-sessions"]!.push({ id: `chat-${i}`, text: pick(chatLines)(topic, detail), timestamp: new Date(ts).toISOString(), metadata: { type: "user", displayName: who, role: "user", channel: "#incidents", topic } })
  } else if (r < 0.87) {
    lines["chat-sessions"]!.push({ id: `chat-${i}`, text: pick(assistantLines)(topic), timestamp: new Date(ts).toISOString(), metadata: { type: "assistant", displayName: "Pantheon", channel: "#incidents", topic } })
  } else if (r < 0.93) {
    lines["chat-sessions"]!.push({ id: `chat-${i}`, text: pick(thoughts)(topic), timestamp: new Date(ts).toISOString(), metadata: { type: "assistant", displayName: "Pantheon", isThought: true, topic } })
  } else {
    const who = pick(people)
    lines["chat-sessions"]!.push({
      id: `chat-${i}`,
      text: `https://files.example.com/screens/${topic.replace(/\W+/g, "-")}-${i}.png`,
      timestamp: new Date(ts).toISOString(),
      metadata: { type: "image", displayName: who, caption: `${who}'s dashboard screenshot of ${topic}: ${detail}`, topic }
    })
  }
}

clock = start
const statuses = ["created", "in progress", "blocked", "done"] as const
for (let i = 0; i < 80; i++) {
  const [topic, detail] = pick(topics)
  const status = pick(statuses)
  const agent = pick(["triage-agent", "deploy-agent", "research-agent"])
  const text =
    status === "created"
      ? `New task: investigate ${topic} (${detail}).`
      : status === "blocked"
        ? `Task on ${topic} is blocked: waiting for production database access.`
        : status === "done"
          ? `Task on ${topic} done: fix merged, dashboards green for 24 hours.`
          : `Working on ${topic}: reproduced the issue in staging.`
  lines["agent-tasks"]!.push({ id: `task-${i}`, text, timestamp: new Date(tick()).toISOString(), metadata: { type: "task", displayName: agent, role: "system", status, topic, priority: pick(["low", "medium", "high"]) } })
}

clock = start
const prefs = [
  (p: string) => `${p} prefers answers as short bullet lists with links to dashboards.`,
  (p: string) => `${p} works in the Europe/Paris time zone; schedule nothing before 09:00 there.`,
  (p: string) => `${p} wants incident summaries to lead with customer impact.`,
  (p: string) => `${p} asked not to be paged for low-priority alerts on weekends.`,
  (p: string) => `${p} reviews database migrations and must approve any schema change.`,
  (p: string) => `${p} likes code examples in TypeScript rather than Python.`
]
for (let i = 0; i < 30; i++) {
  const who = people[i % people.length]!
  lines["user-preferences"]!.push({ id: `pref-${i}`, text: prefs[i % prefs.length]!(who), timestamp: new Date(tick()).toISOString(), metadata: { type: "preference", displayName: who, role: "system", user: who.toLowerCase() } })
}

clock = start
const logs = [
  (t: string) => `ERROR ${t}: connection pool exhausted (max=20, waiting=143)`,
  (t: string) => `WARN ${t}: slow query took 4.2 s on invoices(customer_id)`,
  (t: string) => `INFO ${t}: deploy 2025.06.${Math.floor(random() * 28) + 1} finished in 6 min`,
  (t: string) => `ERROR ${t}: out of memory while building segment 17 of 40`,
  (t: string) => `WARN ${t}: retrying webhook delivery (attempt 3 of 5)`
]
for (let i = 0; i < 90; i++) {
  const [topic] = pick(topics)
  const text = pick(logs)(topic)
  lines["system-logs"]!.push({ id: `log-${i}`, text, timestamp: new Date(tick()).toISOString(), metadata: { type: "log", displayName: "monitor", role: "system", level: text.split(" ")[0], topic } })
}

const dir = join(import.meta.dirname, "..", "data", "sample")
mkdirSync(dir, { recursive: true })
for (const [source, entries] of Object.entries(lines)) {
  writeFileSync(join(dir, `${source}.jsonl`), entries.map((e) => JSON.stringify(e)).join("\n") + "\n")
  console.log(`${source}: ${entries.length} entries`)
}
