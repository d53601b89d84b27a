/** Runs the users service alone: PORT (default 3001), HOST, DATABASE_URL or DATA_DIR, LOG_LEVEL. */
import { runService } from '../common/run-service.js';
import { createUsersService } from './app.js';

await runService({
  name: 'users',
  defaultPort: 3001,
  create: (db, logger) => createUsersService({ db, logger }),
});
