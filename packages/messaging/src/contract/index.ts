export {
  describeQueueBackendContract,
  type QueueBackendFactory,
  type QueueBackendUnderTest,
} from './queue-backend-contract.js';
export { ContractHarness } from './harness.js';
