export * from './event-store.js';
export * from './open.js';
export * from './types.js';
export { MemoryBackend } from './memory.js';
