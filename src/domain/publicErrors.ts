/**
 * The errors both entry points export (`src/index.ts` and `src/cli/index.ts`): what opening,
 * querying and compiling from the stores fail with. One list, so that the two cannot drift apart.
 */
export {
  CatalogUnavailable,
  DataDirUnavailable,
  EmbedError,
  InvalidCompileRequest,
  InvalidConfig,
  InvalidSourceId,
  ListenerUnavailable,
  MissingPackage,
  SourceFailed,
  StoreNotFound,
  StoreQueryError,
  StoreUnavailable,
  UnexpectedError,
  UnsupportedLayout
} from "./errors.js"
export type { CompileError, LoadError } from "./errors.js"
