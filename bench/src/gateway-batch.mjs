/**
 * Batching: an overview whose order has 20 lines. The gateway looks the products up in ONE
 * batched `/products?ids=` call; the naive handlers do the same in one call, or one
 * `/products/:id` call per line. Upstream calls per overview and latency, side by side.
 *
 *   node --expose-gc src/gateway-batch.mjs --variant gateway [--quick]
 */
import { runScenario } from './lib.mjs';
import { completeOverview, gatewayMissing, measureGateway } from './gateway-lib.mjs';

const variants = {
  'naive-per-line': {
    label: 'naive Promise.all, one /products/:id call per order line (20)',
    lib: 'fastify+undici',
    role: 'baseline',
    server: 'naive-per-line',
  },
  'naive-batched': {
    label: 'naive Promise.all, one /products?ids= call for the 20 lines',
    lib: 'fastify+undici',
    server: 'naive',
  },
  gateway: {
    label: 'shop gateway: batchLoader, one /products?ids= call for the 20 lines',
    lib: '@bulwark/shop',
    role: 'subject',
    server: 'gateway',
    requires: gatewayMissing,
  },
};

await runScenario(import.meta, 'gateway-batch', variants, async (variant, { quick }) => {
  const result = await measureGateway({
    server: variant.server,
    profile: 'batch20',
    quick,
    expect: completeOverview,
  });
  // Answers that are not complete are counted (`failures`, `statuses`), not fatal: on a busy
  // machine the gateway's 200-300 ms attempt limits fire, and that is part of the figure.
  return result;
});
