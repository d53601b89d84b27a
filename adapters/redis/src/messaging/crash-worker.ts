/**
 * The subject of the crash harness (@bulwark/messaging/contract, crash/) on Redis: the queue
 * backend, and an effect store whose inbox mark and effect are one Lua script (SET NX of the
 * message key, then a count per message index), so an effect happens once per message key even
 * when a SIGKILLed worker's message is delivered again. The harness imports the built copy of
 * this module in each worker process, so everything is opened from string params: `url` and
 * `prefix`.
 *
 * The effect store counts every applied effect per index instead of setting a flag: if the inbox
 * let a redelivery through, the second effect would show up in the check.
 */
import type { Message } from '@bulwark/messaging';
import type { CrashSubject, CrashSubjectConfig } from '@bulwark/messaging/contract';
import { Redis } from 'ioredis';
import { redisQueueBackend } from './backend.js';
import { luaScript, runScript } from './scripts.js';

/** KEYS: inbox mark, effect counts. ARGV: message index. 1 when applied, 0 for a duplicate. */
const APPLY_ONCE = luaScript(`
if not redis.call('SET', KEYS[1], '1', 'NX') then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
return 1
`);

export function openCrashSubject(config: CrashSubjectConfig): Promise<CrashSubject> {
  const { url, prefix } = config.params;
  if (url === undefined || prefix === undefined) {
    throw new Error('crash subject: params.url and params.prefix are required');
  }
  const client = new Redis(url, { maxRetriesPerRequest: 0 });
  client.on('error', () => undefined);
  const backend = redisQueueBackend({ redis: client, prefix });
  // One hash tag per run, so the inbox mark and the effect are one atomic script.
  const tag = `{${prefix}:crash:${config.runId}}`;
  const effects = `${tag}:effects`;
  return Promise.resolve({
    backend,
    async applyEffect(message: Message, index: number) {
      const key = `${tag}:inbox:${message.idempotencyKey ?? message.id}`;
      return (await runScript(client, APPLY_ONCE, [key, effects], [index])) === 1;
    },
    async countEffects() {
      const counts = await client.hvals(effects);
      return counts.reduce((sum, n) => sum + Number(n), 0);
    },
    async effectCounts() {
      const all = await client.hgetall(effects);
      return new Map(Object.entries(all).map(([index, n]) => [Number(index), Number(n)]));
    },
    async close() {
      await backend.close();
      await client.quit().catch(() => client.disconnect());
    },
  });
}
