export { TestClock, flushMicrotasks, type TestClockOptions } from './test-clock.js';
export { observe, type Observed } from './observe.js';
export { seededRandom } from '@bulwark/core';
