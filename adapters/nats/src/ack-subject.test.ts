import { describe, expect, it } from 'vitest';
import { deliveryCountOf, streamSeqOf } from './jetstream.js';

describe('ack subjects', () => {
  // $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ts>.<pending>
  const v1 = '$JS.ACK.queues.c_orders.3.1042.977.1764700000000000000.12';
  // v2 adds the domain and the account hash after ACK, and a random token at the end.
  const v2 = '$JS.ACK.hub.ACCHASH.queues.c_orders.1.1042.977.1764700000000000000.12.tok';

  it('reads the delivery count and the stream sequence of both forms', () => {
    expect(deliveryCountOf(v1)).toBe(3);
    expect(streamSeqOf(v1)).toBe(1042);
    expect(deliveryCountOf(v2)).toBe(1);
    expect(streamSeqOf(v2)).toBe(1042);
  });

  it('refuses a subject that is not an ack subject, as BACKEND_ERROR', () => {
    expect(() => deliveryCountOf('_INBOX.abc')).toThrow(/unexpected ack subject/);
    expect(() => streamSeqOf('$JS.ACK.queues.c.x.y.z.t.p')).toThrow(/unexpected ack subject/);
  });
});
