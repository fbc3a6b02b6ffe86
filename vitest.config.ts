import { availableParallelism } from "node:os"
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Vitest's default is one worker fewer than the cores: one on a 2-core machine, while most files
    // wait on child processes, PGlite's worker or the server. One a core: 9.2 → 7.5 min here.
    maxWorkers: availableParallelism()
  }
})
