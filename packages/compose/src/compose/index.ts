// The composition engine's public API.
export {
  composition,
  part,
  Composition,
  type CompositionOptions,
  type PartDefinition,
} from './composition.js';
export {
  staleFrom,
  alternate,
  staticValue,
  staticFrom,
  omit,
  type AlternateOptions,
} from './fallbacks.js';
export { RawJson, rawJson } from './raw-json.js';
export {
  toEnvelope,
  envelopeJson,
  type Envelope,
  type EnvelopeError,
  type EnvelopePartMeta,
} from './envelope.js';
export { reasonOf, codeOf, publicMessage, InvalidResponseError } from './reasons.js';
export type {
  Criticality,
  PartStatus,
  PartReason,
  PartContext,
  FallbackContext,
  Fallback,
  StaleFallback,
  AlternateFallback,
  StaticFallback,
  OmitFallback,
  PartSpec,
  PartOutcome,
  FailureKind,
  RunFailure,
  CompositionSuccess,
  CompositionFailure,
  CompositionResult,
  RunOptions,
  PartEvent,
  RunEvent,
  CompositionEvent,
} from './types.js';
