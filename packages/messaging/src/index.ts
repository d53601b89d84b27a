export {
  newMessageId,
  REPLAYED_FROM_HEADER,
  REPLAY_COUNT_HEADER,
  type Message,
  type SendInput,
  type EnqueueRecord,
  type Headers,
} from './message.js';
export {
  ack,
  retry,
  fail,
  defer,
  errorRecord,
  isOutcome,
  type Outcome,
  type AckOutcome,
  type RetryOutcome,
  type FailOutcome,
  type DeferOutcome,
  type RetryInput,
  type DeferInput,
  type AttemptError,
} from './outcome.js';
export { MessagingError, type MessagingErrorCode } from './errors.js';
export type {
  QueueBackend,
  Lease,
  Delivery,
  FetchRequest,
  FetchResult,
  AttemptRecord,
  DeadReason,
  Settlement,
  ExpiredLease,
  RecoveryDecision,
  RecoverRequest,
  QueueStats,
  DeadLetter,
  DeadLetterFilter,
  DeadLetterCursor,
  DeadLetterPage,
  DeadLetterSummary,
  AuditAction,
  AuditEntry,
  AuditQuery,
} from './backend.js';
export { createProducer, toRecord, type Producer, type ProducerOptions } from './producer.js';
export {
  consume,
  type Consumer,
  type ConsumerOptions,
  type ConsumerEvent,
  type Handler,
  type HandlerContext,
  type StopOptions,
} from './consumer.js';
export {
  deadLetters,
  replayRecord,
  type DeadLetterOps,
  type DeadLetterOpsOptions,
  type DeadLetterList,
  type ListOptions,
  type ReplayOptions,
  type ReplayResult,
  type PurgeOptions,
  type PurgeResult,
} from './dead-letters.js';
export { matchesDeadLetterFilter, compareDeadLetters } from './dead-letter-filter.js';
export {
  memoryQueueBackend,
  MemoryQueueBackend,
  type MemoryQueueBackendOptions,
} from './memory-backend.js';
