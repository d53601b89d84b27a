/**
 * Test support (not part of the package: excluded from the build): deletes queues a test run
 * declared, each on a channel of its own, because RabbitMQ closes a channel on any error (a queue
 * already gone, say) and the next delete must not fail with it.
 */
import amqp from 'amqplib';

export async function deleteQueues(url: string, names: Iterable<string>): Promise<void> {
  const connection = await amqp.connect(url);
  try {
    for (const name of names) {
      const channel = await connection.createChannel();
      channel.on('error', () => undefined);
      await channel.deleteQueue(name).catch(() => undefined);
      await channel.close().catch(() => undefined);
    }
  } finally {
    await connection.close();
  }
}
