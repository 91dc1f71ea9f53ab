export * from './event-store.js';
export { MemoryBackend } from './memory.js';
export * from './open.js';
export * from './types.js';
