/**
 * Runs the gateway alone: PORT (default 3000), HOST (default 127.0.0.1), USERS_URL, ORDERS_URL,
 * CATALOG_URL, RECOMMENDATIONS_URL (default http://127.0.0.1:3001..3004), REDIS_URL (optional L2),
 * LOG_LEVEL. SIGTERM / SIGINT drain and stop it.
 */
import { optional, portFrom } from '../services/common/env.js';
import { createGateway } from './app.js';
import { DEFAULT_PORTS } from './upstreams.js';

const app = await createGateway({
  logger: { level: optional(process.env, 'LOG_LEVEL') ?? 'info' },
});
await app.listen({
  port: portFrom(process.env, 'PORT', DEFAULT_PORTS.gateway),
  host: optional(process.env, 'HOST') ?? '127.0.0.1',
});
