export { TestClock, flushMicrotasks, type TestClockOptions } from './test-clock.js';
export { observe, type Observed } from './observe.js';
export { controllableWork, type ControllableWork } from './controllable-work.js';
export { runUntilKilled, type KilledChildOptions } from './killed-child.js';
export { seededRandom } from '@bulwark/core';
export {
  startFaultProxy,
  startFaultProxyAdmin,
  FaultValidationError,
  validateProxyFaults,
  type FaultProxy,
  type FaultProxyOptions,
  type FaultProxyStats,
  type FaultProxyAdmin,
  type FaultProxyAdminOptions,
  type FaultProxyMode,
  type ProxyFault,
  type ProxyFaultKind,
  type ProxyFaultDirection,
} from './fault-proxy/index.js';
