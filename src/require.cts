// What `require("pantheon-persistence")` gets: the package is ESM-only, and says so instead of ERR_PACKAGE_PATH_NOT_EXPORTED.
throw new Error(
  'pantheon-persistence is an ES module (ESM-only, Node 20 or later): use `import { ... } from "pantheon-persistence"`, or `await import("pantheon-persistence")` from CommonJS.'
)
