/**
 * Gateway fan-out, all healthy: the shop's gateway (`createGateway`: composition, policies, caches,
 * batching) against a naive handler (plain `Promise.all` of the same upstream calls on the same
 * Fastify set-up), both against the same fake upstreams in a third process. `naive-client`
 * (information only) is the naive handler with its calls made by `@bulwark/http` without
 * policies: the client's own cost, apart from composition.
 *
 *   node --expose-gc src/gateway.mjs --variant gateway [--quick]
 */
import { runScenario } from './lib.mjs';
import { completeOverview, gatewayMissing, measureGateway } from './gateway-lib.mjs';

const variants = {
  naive: {
    label:
      'Fastify + bulwark plugin + compress, Promise.all of the 4 upstream calls (undici Pools), no policies',
    lib: 'fastify+undici',
    role: 'baseline',
    server: 'naive',
  },
  'naive-client': {
    label:
      'the naive handler with its 4 calls made by @bulwark/http dependencies without policies (same Pools)',
    lib: '@bulwark/http',
    role: 'info',
    server: 'naive-client',
    requires: gatewayMissing,
  },
  gateway: {
    label:
      '@bulwark/shop createGateway (defaults: deadline slices, retry, breaker, timeouts, cache, batching)',
    lib: '@bulwark/shop',
    role: 'subject',
    server: 'gateway',
    requires: gatewayMissing,
  },
};

await runScenario(import.meta, 'gateway', variants, async (variant, { quick }) => {
  const result = await measureGateway({ server: variant.server, quick, expect: completeOverview });
  // Answers that are not complete are counted (`failures`, `statuses`), not fatal: on a busy
  // machine the gateway's 200-300 ms attempt limits fire, and that is part of the figure.
  return result;
});
