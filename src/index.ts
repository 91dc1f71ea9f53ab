export * from './events/index.js';
export * from './store/index.js';
