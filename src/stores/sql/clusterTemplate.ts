/**
 * The files of a new embedded cluster, kept by the process so that its later new clusters start
 * from them instead of running initdb again (PGlite's `loadDataDir`, as its own `clone`). On this
 * machine initdb is most of a new store's start: 2.0 s in memory and 4.4 s in a new directory,
 * against 0.8 s and 1.3 s from the copy.
 *
 * - A process's first new cluster runs initdb, as before: a process that makes one pays nothing more.
 * - The next one in memory runs initdb too, and is copied before anything else runs on it (a
 *   gzip'd tar of its files, about 5 MB, 0.8 s once), so the copy holds initdb's cluster and the
 *   vector extension only. Never one in a directory: its files hold the store's lock and markers,
 *   which would land in every directory made from the copy.
 * - Every later one is unpacked from that copy; one that comes while the copy is being made waits
 *   for it, so there is one copy. A copy that could not be made is asked of the next new cluster
 *   again; meanwhile new clusters run initdb.
 *
 * A cluster from the copy is the one initdb would have made: the same PostgreSQL, the same data
 * checksums, the same extension; it shares only initdb's system identifier with the others of the
 * process, which only replication reads.
 */

/** How a database's cluster came to be: made by initdb, unpacked from the process's copy, or already there. */
export type StartedFrom = "initdb" | "template" | "existing"

/** A new cluster's place: in memory, or a new directory. */
export type NewCluster = "memory" | "directory"

let newClusters = 0
let copy: Promise<Blob | undefined> | undefined

/**
 * Starts a new cluster with `run`: from the copy when there is one (waiting for one being made),
 * else by initdb, asking `run` for a copy when this is the one to copy. `run` is called before
 * anything else can ask, so a cluster that comes while the copy is made waits for it: one copy.
 */
export const startNewCluster = async (
  place: NewCluster,
  run: (template: Blob | undefined, copy: boolean) => Promise<Blob | null>
): Promise<StartedFrom> => {
  const template = copy === undefined ? undefined : await copy
  if (template !== undefined) {
    await run(template, false)
    return "template"
  }
  newClusters++
  if (place !== "memory" || copy !== undefined || newClusters < 2) {
    await run(undefined, false)
    return "initdb"
  }
  const started = run(undefined, true)
  const made = started.then(
    (files) => files ?? undefined,
    () => undefined
  )
  copy = made
  // A copy that could not be made is not kept: a later new cluster is asked again.
  void made.then((files) => {
    if (files === undefined && copy === made) copy = undefined
  })
  await started
  return "initdb"
}
