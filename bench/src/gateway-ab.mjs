/**
 * Interleaved A/B of two gateway targets: both servers run at once against the same fake
 * upstreams, and the load goes to one, then the other, in alternating blocks (A B, B A, ...). This
 * VM's speed drifts by 30-60 % from minute to minute; whole runs one after the other catch
 * different phases, blocks of a few seconds side by side catch the same one. Information only:
 * the committed figure is `run.mjs --scenario gateway`; this is the tool for telling whether a
 * change moved the ratio.
 *
 *   node src/gateway-ab.mjs [--a naive] [--b gateway] [--rounds 12] [--block 3000]
 *                           [--a-dir /other/checkout]   (A's bench/ from another checkout, built)
 *
 * Prints each round and the medians of B/A (requests/s and server CPU per request).
 */
import process from 'node:process';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import {
  GATEWAY_CONCURRENCY,
  requestOverview,
  startServer,
  startUpstreams,
} from './gateway-lib.mjs';
import { CONNECTIONS, drive } from './http-lib.mjs';

const { values: args } = parseArgs({
  options: {
    a: { type: 'string', default: 'naive' },
    b: { type: 'string', default: 'gateway' },
    rounds: { type: 'string', default: '12' },
    block: { type: 'string', default: '3000' },
    'a-dir': { type: 'string' },
  },
});
const rounds = Number(args.rounds);
const block = Number(args.block);
if (!(rounds >= 1 && block >= 100)) {
  process.stderr.write('--rounds must be >= 1 and --block >= 100\n');
  process.exit(2);
}
const libA =
  args['a-dir'] === undefined
    ? { startServer }
    : await import(`${args['a-dir'].replace(/\/$/, '')}/bench/src/gateway-lib.mjs`);

const upstreams = await startUpstreams('overview');

async function side(startServerOf, kind) {
  const server = await startServerOf(kind, upstreams.urls);
  const pool = new Pool(server.url, { connections: CONNECTIONS });
  // Every request a new user, as in the committed scenario; both sides ask for the same users
  // (1, 2, ...: each server has its own cache), so neither gets longer ids and larger answers.
  let user = 1;
  const send = async () => {
    const { statusCode, body } = await requestOverview(pool, user++);
    return statusCode === 200 && body?.data?.user != null;
  };
  return { server, pool, send };
}

const sides = {
  A: await side(libA.startServer, args.a),
  B: await side(startServer, args.b),
};
try {
  for (const s of Object.values(sides)) {
    await drive(s.send, { concurrency: 4, count: 200 }); // ramp up (see gateway-lib.mjs)
    await drive(s.send, { concurrency: GATEWAY_CONCURRENCY, count: block });
  }
  const ratios = { rps: [], cpu: [] };
  for (let round = 0; round < rounds; round++) {
    const row = {};
    for (const name of round % 2 === 0 ? ['A', 'B'] : ['B', 'A']) {
      const s = sides[name];
      const cpu0 = await s.server.cpuUs();
      const result = await drive(s.send, { concurrency: GATEWAY_CONCURRENCY, count: block });
      const cpuUs = (await s.server.cpuUs()) - cpu0;
      if (result.failures > 0) throw new Error(`${name}: ${result.failures} unexpected answers`);
      row[name] = { rps: block / (result.elapsedNs / 1e9), cpu: cpuUs / block };
    }
    ratios.rps.push(row.B.rps / row.A.rps);
    ratios.cpu.push(row.B.cpu / row.A.cpu);
    process.stdout.write(
      `round ${round + 1}: A ${row.A.rps.toFixed(0)} req/s ${row.A.cpu.toFixed(0)} µs/req, ` +
        `B ${row.B.rps.toFixed(0)} req/s ${row.B.cpu.toFixed(0)} µs/req, ` +
        `B/A ${(row.B.rps / row.A.rps).toFixed(3)} (CPU ${(row.B.cpu / row.A.cpu).toFixed(3)})\n`,
    );
  }
  const median = values => {
    const sorted = [...values].sort((x, y) => x - y);
    const mid = sorted.length >> 1;
    return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  };
  process.stdout.write(
    `A = ${args.a}${args['a-dir'] === undefined ? '' : ` (${args['a-dir']})`}, B = ${args.b}: ` +
      `median B/A requests/s ${median(ratios.rps).toFixed(3)}, ` +
      `server CPU per request ${median(ratios.cpu).toFixed(3)} (${rounds} rounds of ${block})\n`,
  );
} finally {
  for (const s of Object.values(sides)) {
    await s.pool.close();
    await s.server.close();
  }
  await upstreams.close();
}
