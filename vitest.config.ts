import { availableParallelism } from "node:os"
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Vitest's default is one worker fewer than the cores: one on a 2-core machine. Most files wait
    // on child processes, PGlite's worker or the server, so one a core halves the run.
    maxWorkers: Math.max(2, availableParallelism()),
    minWorkers: 1
  }
})
