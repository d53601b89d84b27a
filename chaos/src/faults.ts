/**
 * The chaos matrix: which upstream is faulted, and how. Each fault is a fault-proxy fault list
 * (`@bulwark/testing`), so a scenario switches it on and off at run time without restarting
 * anything.
 */
import type { ProxyFault } from '@bulwark/testing';

export const DEPENDENCIES = ['users', 'orders', 'catalog', 'recommendations'] as const;
export type Dependency = (typeof DEPENDENCIES)[number];

export const FAULT_NAMES = [
  'down',
  'http-500',
  'latency-2s',
  'hang',
  'flapping-50',
  'reset',
] as const;
export type FaultName = (typeof FAULT_NAMES)[number];

export interface FaultDefinition {
  name: FaultName;
  /** What the table says about it. */
  label: string;
  faults: readonly ProxyFault[];
  /**
   * Whether every request meets the fault. A partial fault (flapping) lets some calls through, and
   * the gateway's retry may hide the rest, so its checks accept `ok` parts and 200 answers.
   */
  total: boolean;
}

export const FAULTS: Readonly<Record<FaultName, FaultDefinition>> = {
  down: {
    name: 'down',
    label: 'listener closed: connections refused',
    faults: [{ kind: 'down' }],
    total: true,
  },
  'http-500': {
    name: 'http-500',
    label: 'every request answered 500 by the proxy',
    faults: [{ kind: 'http-error', status: 500 }],
    total: true,
  },
  'latency-2s': {
    name: 'latency-2s',
    label: '2,000 ms before each request reaches the service',
    faults: [{ kind: 'latency', latencyMs: 2_000 }],
    total: true,
  },
  hang: {
    name: 'hang',
    label: 'request forwarded, never answered, never closed',
    faults: [{ kind: 'hang' }],
    total: true,
  },
  'flapping-50': {
    // A service that is up half the time: each request has a 50% chance of a 503.
    name: 'flapping-50',
    label: '50% of requests answered 503, the rest forwarded',
    faults: [{ kind: 'http-error', status: 503, probability: 0.5 }],
    total: false,
  },
  reset: {
    name: 'reset',
    label: 'connection reset (TCP RST) before the service is reached',
    faults: [{ kind: 'reset' }],
    total: true,
  },
};

/** The overview parts each upstream feeds (the catalog feeds the orders' product details). */
export const PARTS_OF: Readonly<Record<Dependency, readonly string[]>> = {
  users: ['user'],
  orders: ['orders'],
  catalog: ['orders'],
  recommendations: ['recommendations'],
};

export const OVERVIEW_PARTS = ['user', 'orders', 'recommendations'] as const;

/** Criticality of an upstream for the overview: only the profile is critical. */
export function isCritical(dependency: Dependency): boolean {
  return dependency === 'users';
}
