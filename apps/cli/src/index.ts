// The CLI as a library: run commands in-process (tests, other tools) with your own io.
export { run } from './run.js';
export { runDlq } from './dlq/commands.js';
export { nodeIo, type CliIo } from './io.js';
export {
  openBackendByUrl,
  targetOf,
  type BackendTarget,
  type OpenBackendOptions,
  type OpenedBackend,
} from './open-backend.js';
export { UsageError, EXIT_OK, EXIT_FAILURE, EXIT_USAGE } from './errors.js';
