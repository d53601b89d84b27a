/**
 * The subject of the crash harness (@bulwark/messaging/contract, crash/) on NATS JetStream: the
 * queue backend, and an effect store whose inbox mark and effect are one compare-and-set publish
 * (subject `<prefix>.e.<run>.<index>.<message key>`, expected last sequence 0, one message per
 * subject), so an effect happens once per message key even when a SIGKILLed worker's message is
 * delivered again. The harness imports the built copy of this module in each worker process, so
 * everything is opened from string params: `url` and `prefix`.
 *
 * Effects are counted per index from the subjects, not deduplicated by index: if the inbox let a
 * redelivery of the same index through under another key, it would show up in the check.
 */
import type { Message } from '@bulwark/messaging';
import type { CrashSubject, CrashSubjectConfig } from '@bulwark/messaging/contract';
import { jetstream, jetstreamManager, RetentionPolicy } from '@nats-io/jetstream';
import { natsQueueBackend } from './backend.js';
import { apiCode, WRONG_LAST_SEQUENCE } from './jetstream.js';
import { escapeToken } from './names.js';

export async function openCrashSubject(config: CrashSubjectConfig): Promise<CrashSubject> {
  const { url, prefix } = config.params;
  if (url === undefined || prefix === undefined) {
    throw new Error('crash subject: params.url and params.prefix are required');
  }
  const backend = await natsQueueBackend({ url, prefix });
  const js = jetstream(backend.connection);
  const jsm = await jetstreamManager(backend.connection);
  const stream = `${prefix}_effects`;
  const base = `${prefix}.e.${escapeToken(config.runId)}`;
  await jsm.streams.info(stream).catch(() =>
    jsm.streams.add({
      name: stream,
      subjects: [`${prefix}.e.>`],
      retention: RetentionPolicy.Limits,
      max_msgs_per_subject: 1,
    }),
  );
  const counts = async (): Promise<Map<number, number>> => {
    const info = await jsm.streams.info(stream, { subjects_filter: `${base}.>` });
    const out = new Map<number, number>();
    for (const subject of Object.keys(info.state.subjects ?? {})) {
      const index = Number(subject.slice(base.length + 1).split('.')[0]);
      out.set(index, (out.get(index) ?? 0) + 1);
    }
    return out;
  };
  return {
    backend,
    async applyEffect(message: Message, index: number) {
      const key = escapeToken(message.idempotencyKey ?? message.id);
      try {
        await js.publish(`${base}.${index}.${key}`, '', { expect: { lastSubjectSequence: 0 } });
        return true;
      } catch (error) {
        if (apiCode(error) === WRONG_LAST_SEQUENCE) return false;
        throw error;
      }
    },
    async countEffects() {
      let total = 0;
      for (const n of (await counts()).values()) total += n;
      return total;
    },
    effectCounts: counts,
    close: () => backend.close(),
  };
}
