/**
 * Runs the notifications service alone: PORT (default 3005), HOST, DATABASE_URL or DATA_DIR,
 * USERS_URL (default http://127.0.0.1:3001), LOG_LEVEL. It consumes the `notifications` queue of
 * its database: run it beside a separately started orders service only on one shared PostgreSQL
 * (DATABASE_URL); separate PGlite folders are separate queues.
 */
import { postgresQueueBackend } from '@bulwark/postgres';
import { optional } from '../common/env.js';
import { runService } from '../common/run-service.js';
import { createNotificationsService, NOTIFICATIONS_PORT } from './app.js';

const url = optional(process.env, 'DATABASE_URL');

await runService({
  name: 'notifications',
  defaultPort: NOTIFICATIONS_PORT,
  create: async (db, logger) => {
    // LISTEN on its own connection: the orders service's enqueues wake this consumer at once.
    const backend = await postgresQueueBackend({
      db,
      ...(url === undefined ? {} : { listenUrl: url }),
    });
    const app = await createNotificationsService({ db, logger, backend });
    // preClose: runService closes the database in onClose (hooks run last added first).
    app.addHook('preClose', async () => {
      await backend.close?.();
    });
    return app;
  },
});
