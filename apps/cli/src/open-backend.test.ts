import { describe, expect, it } from 'vitest';
import { adapterExport, openBackendByUrl, targetOf } from './open-backend.js';

describe('targetOf', () => {
  it.each([
    ['postgres://u@h:5432/db', { kind: 'postgres', url: 'postgres://u@h:5432/db' }],
    ['postgresql://h/db', { kind: 'postgres', url: 'postgresql://h/db' }],
    ['./data/queue', { kind: 'pglite', dataDir: './data/queue' }],
    ['/var/lib/app/pg', { kind: 'pglite', dataDir: '/var/lib/app/pg' }],
    ['pglite:./data', { kind: 'pglite', dataDir: './data' }],
    ['redis://127.0.0.1:6379', { kind: 'redis', url: 'redis://127.0.0.1:6379' }],
    ['rediss://cache:6380', { kind: 'redis', url: 'rediss://cache:6380' }],
    ['amqp://guest:guest@mq', { kind: 'rabbitmq', url: 'amqp://guest:guest@mq' }],
    ['nats://127.0.0.1:4222', { kind: 'nats', url: 'nats://127.0.0.1:4222' }],
  ])('maps %s', (url, target) => {
    expect(targetOf(url)).toEqual(target);
  });

  it.each([
    ['mysql://h/db', 'no queue backend for mysql://'],
    ['', '--url is empty'],
    ['pglite:', 'pglite: needs a folder'],
  ])('refuses %j as a usage error', (url, message) => {
    expect(() => targetOf(url)).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expect(() => targetOf(url)).toThrow(message);
  });
});

describe('adapters loaded on demand', () => {
  it('names the backend when the adapter has no queue backend export', async () => {
    const importer = () => Promise.resolve({ redisCacheStore: () => undefined });
    await expect(adapterExport('redis', importer)).rejects.toThrow(
      'the redis queue backend is not available in this build (@bulwark/redis has no redisQueueBackend)',
    );
  });

  it('names the backend when the adapter does not load', async () => {
    const importer = () => Promise.reject(new Error('Cannot find module'));
    const error = await adapterExport('nats', importer).then(
      () => new Error('expected a failure'),
      (e: unknown) => e as Error,
    );
    expect(error.message).toBe(
      'the nats queue backend is not available in this build (@bulwark/nats did not load)',
    );
    expect((error.cause as Error).message).toBe('Cannot find module');
  });

  it('passes the URL to the factory and closes what it opened', async () => {
    const calls: unknown[] = [];
    let closed = 0;
    const importer = (specifier: string) =>
      Promise.resolve({
        rabbitmqQueueBackend: (options: unknown) => {
          calls.push([specifier, options]);
          return Promise.resolve({ name: 'fake', close: () => Promise.resolve(void closed++) });
        },
      });
    const opened = await openBackendByUrl('amqp://mq:5672', { prefix: 'shop' }, importer);
    expect(calls).toEqual([['@bulwark/rabbitmq', { url: 'amqp://mq:5672', prefix: 'shop' }]]);
    await opened.close();
    expect(closed).toBe(1);
  });

  it('refuses a PGlite folder that does not exist instead of creating one', async () => {
    await expect(openBackendByUrl('/nonexistent/bulwark-cli-test')).rejects.toThrow(
      'no PGlite data folder at /nonexistent/bulwark-cli-test',
    );
  });
});
