/**
 * The recommendations service hangs (accepts requests, never answers): the gateway degrades that
 * part (timeout, then an open breaker and the popular-items fallback) and keeps serving; the naive
 * handler's `Promise.all` waits on the hung call until the bulwark plugin's deadline answers 504.
 * The healthy gateway runs beside them, for the ratio.
 *
 *   node --expose-gc src/gateway-hang.mjs --variant gateway-hang [--quick]
 */
import { runScenario } from './lib.mjs';
import { BUDGET_MS, completeOverview, gatewayMissing, measureGateway } from './gateway-lib.mjs';

/** The naive handler answers nothing before the deadline: a short run says all there is. */
const NAIVE_HANG_PHASES = { warmup: 0, timed: 320 };

const variants = {
  'gateway-healthy': {
    label: 'shop gateway, all upstreams healthy',
    lib: '@bulwark/shop',
    role: 'baseline',
    server: 'gateway',
    requires: gatewayMissing,
    expect: completeOverview,
  },
  'gateway-hang': {
    label: 'shop gateway, recommendations hanging',
    lib: '@bulwark/shop',
    role: 'subject',
    server: 'gateway',
    hang: true,
    requires: gatewayMissing,
    // 200 with the profile; recommendations degraded (fallback or omitted).
    expect: (status, body) =>
      status === 200 &&
      body?.data?.user?.id !== undefined &&
      body?.meta?.parts?.recommendations?.status !== 'ok',
  },
  'naive-hang': {
    label: `naive Promise.all handler, recommendations hanging (${NAIVE_HANG_PHASES.timed} requests)`,
    lib: 'fastify+undici',
    server: 'naive',
    hang: true,
    phases: NAIVE_HANG_PHASES,
    expect: completeOverview,
  },
};

await runScenario(import.meta, 'gateway-hang', variants, async (variant, { quick }) => {
  const result = await measureGateway({
    server: variant.server,
    quick,
    hang: variant.hang === true,
    expect: variant.expect,
    ...(variant.phases === undefined ? {} : { phases: variant.phases }),
  });
  // Unexpected answers are counted (`failures`, `statuses`), not fatal: the naive handler fails
  // every request by design, and on a busy machine the gateway's attempt limits fire.
  return { ...result, budgetMs: BUDGET_MS };
});
