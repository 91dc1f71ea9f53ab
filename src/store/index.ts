export { LogCorruptError } from './audit/errors.js';
export type { Problem, ProblemKind, VerifyProgress } from './audit/report.js';
export { type Sealing, type SealingOptions, startSealing } from './audit/sealer.js';
export * from './event-store.js';
export { MemoryBackend } from './memory.js';
export * from './open.js';
export { isSystemStream, SEAL_STREAM, SEAL_TYPE } from './system-streams.js';
export * from './types.js';
