/** Runs the orders service alone: PORT (default 3002), HOST, DATABASE_URL or DATA_DIR, LOG_LEVEL. */
import { runService } from '../common/run-service.js';
import { createOrdersService } from './app.js';

await runService({
  name: 'orders',
  defaultPort: 3002,
  create: (db, logger) => createOrdersService({ db, logger }),
});
