/** Runs the catalog service alone: PORT (default 3003), HOST, DATABASE_URL or DATA_DIR, LOG_LEVEL. */
import { runService } from '../common/run-service.js';
import { createCatalogService } from './app.js';

await runService({
  name: 'catalog',
  defaultPort: 3003,
  create: (db, logger) => createCatalogService({ db, logger }),
});
