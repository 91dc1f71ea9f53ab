export * from './canonical.js';
export * from './envelope.js';
export * from './errors.js';
export * from './hash.js';
export * from './ids.js';
export * from './registry.js';
