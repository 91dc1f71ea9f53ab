export * from './events/index.js';
export * from './projections/index.js';
export * from './runtime/index.js';
export * from './store/index.js';
