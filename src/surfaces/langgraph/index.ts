export {
  asLangGraphEvent,
  CheckpointConflictError,
  type CheckpointData,
  type LangGraphEvent,
  type LangGraphEventOf,
  LangGraphEvents,
  type PrunedData,
  type RolledBackData,
  type StoredBlob,
  type StoredValue,
  type ThreadDeletedData,
  type WritesData,
} from './events.js';
export {
  type CheckpointRecord,
  type PruneOptions,
  type PruneResult,
  RewindCheckpointSaver,
  type RewindCheckpointSaverOptions,
  type RollbackResult,
  type ThreadSummary,
} from './saver.js';
export type { CheckpointStatus } from './thread-index.js';
