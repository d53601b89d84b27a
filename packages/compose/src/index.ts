export {
  provenanceOf,
  type CacheTier,
  type CachedValue,
  type PartSource,
  type Provenance,
} from './provenance.js';
export * from './compose/index.js';
export * from './http/index.js';
export * from './cache/index.js';
export * from './batch/index.js';
