/**
 * Runs the orders service alone: PORT (default 3002), HOST, DATABASE_URL or DATA_DIR, LOG_LEVEL.
 * It relays its outbox (`order.placed`) into the queue tables of the same database.
 */
import { postgresQueueBackend } from '@bulwark/postgres';
import type { FastifyInstance } from 'fastify';
import { runService } from '../common/run-service.js';
import { createOrdersService } from './app.js';
import { orderEventsRelay } from './events.js';

await runService({
  name: 'orders',
  defaultPort: 3002,
  create: async (db, logger) => {
    const backend = await postgresQueueBackend({ db });
    const logged: { app?: FastifyInstance } = {};
    const relay = orderEventsRelay({
      db,
      backend,
      onError: error =>
        logged.app?.log.error({ err: error }, 'outbox relay: publish failed; will retry'),
    });
    const app = await createOrdersService({ db, logger, events: { relay } });
    logged.app = app;
    app.addHook('onReady', done => {
      relay.start();
      done();
    });
    // preClose: runService closes the database in an onClose hook, and onClose hooks run last
    // added first; stopping here lets the relay finish before the database goes.
    app.addHook('preClose', async () => {
      await relay.stop();
      await backend.close?.();
    });
    return app;
  },
});
