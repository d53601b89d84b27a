export {
  batchLoader,
  type BatchLoader,
  type BatchLoaderOptions,
  type BatchLoadContext,
  type BatchLoadOptions,
  type BatchLoadResult,
  type BatchLoaderEvent,
  type BatchDispatchReason,
} from './batch-loader.js';
export {
  BatchKeyMissingError,
  BatchResultError,
  isBatchKeyMissingError,
  isBatchResultError,
} from './errors.js';
