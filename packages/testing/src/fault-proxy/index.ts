export {
  startFaultProxy,
  type FaultProxy,
  type FaultProxyOptions,
  type FaultProxyStats,
} from './proxy.js';
export {
  startFaultProxyAdmin,
  type FaultProxyAdmin,
  type FaultProxyAdminOptions,
} from './admin.js';
export {
  FaultValidationError,
  validateProxyFaults,
  type FaultProxyMode,
  type ProxyFault,
  type ProxyFaultDirection,
  type ProxyFaultKind,
} from './faults.js';
