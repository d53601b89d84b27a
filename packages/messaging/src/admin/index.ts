// The dead letter admin API (a Fastify plugin) and the helpers it shares with the CLI.
export { deadLetterAdmin } from './plugin.js';
export { type DeadLetterAdminOptions } from './options.js';
export {
  ADMIN_PROBLEM_CONTENT_TYPE,
  AdminProblemTypes,
  type AdminProblem,
  type AdminFieldError,
} from './problem.js';
export { encodeDeadLetterCursor, decodeDeadLetterCursor } from './cursor.js';
export { parseTimeInput } from './time.js';
