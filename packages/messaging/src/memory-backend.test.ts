import { describeQueueBackendContract } from './contract/index.js';
import { memoryQueueBackend } from './memory-backend.js';

describeQueueBackendContract('memory', () => ({ backend: memoryQueueBackend() }));
