export {
  describeQueueBackendContract,
  type QueueBackendFactory,
  type QueueBackendUnderTest,
  BROKER_EARLY_SLACK_MS,
} from './queue-backend-contract.js';
export { ContractHarness, type ContractHarnessOptions, type ContractTiming } from './harness.js';
export * from './crash/index.js';
export { wakeOnlyConsumer, type WakeOnlyConsumer } from './wake-only-consumer.js';
