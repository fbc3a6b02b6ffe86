/** A small corpus of realistic entries (chat, an assistant reply, an image with a caption). */
export const corpus = [
  { id: "1", text: "the deployment failed because the database migration timed out", timestamp: "2024-03-01T10:00:00Z", metadata: { displayName: "Ann", type: "chat", user: "u1" } },
  { id: "2", text: "we should add retries to the payment webhook handler", timestamp: "2024-03-01T10:01:00Z", metadata: { displayName: "Bob", type: "chat", user: "u2" } },
  { id: "3", text: "the database migration needs a longer timeout", timestamp: "2024-03-01T10:02:00Z", metadata: { displayName: "Pantheon", type: "chat", user: "u1" } },
  { id: "4", text: "https://img.example/architecture.png", timestamp: "2024-03-01T10:03:00Z", metadata: { displayName: "Ann", type: "image", caption: "database architecture diagram" } },
  { id: "5", text: "lunch order: two pizzas and a salad", timestamp: "2024-03-01T10:04:00Z", metadata: { displayName: "Cy", type: "chat", user: "u3" } }
]
