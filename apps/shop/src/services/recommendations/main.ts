/** Runs the recommendations service alone: PORT (default 3004), HOST, DATABASE_URL or DATA_DIR, LOG_LEVEL. */
import { runService } from '../common/run-service.js';
import { createRecommendationsService } from './app.js';

await runService({
  name: 'recommendations',
  defaultPort: 3004,
  create: (db, logger) => createRecommendationsService({ db, logger }),
});
