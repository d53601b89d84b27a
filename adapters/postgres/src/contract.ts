/**
 * Test support on this package's database for the `@bulwark/messaging/contract` crash harness:
 * the effect store (effect row and inbox mark in one transaction) that a crash subject of any
 * queue backend can use, as the RabbitMQ adapter's does.
 */
export { crashEffectStore, type CrashEffectStore } from './messaging/crash-effects.js';
