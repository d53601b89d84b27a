export { TestClock, flushMicrotasks, type TestClockOptions } from './test-clock.js';
export { seededRandom } from '@bulwark/core';
