export {
  provenanceOf,
  type CacheTier,
  type CachedValue,
  type PartSource,
  type Provenance,
} from './provenance.js';
