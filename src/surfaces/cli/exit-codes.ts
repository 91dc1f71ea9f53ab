import { CommanderError } from 'commander';
import { RewindError } from '../../events/errors.js';

/** Exit codes scripts can rely on; documented in the README. */
export const EXIT = {
  ok: 0,
  /** The command ran and found something wrong (a broken chain, a failed run). */
  failed: 1,
  /** Bad arguments or input: nothing was done. */
  usage: 2,
  /** A run, stream or label that does not exist. */
  notFound: 3,
  /** Someone else changed the run meanwhile (concurrency): read again and retry. */
  conflict: 4,
  /** The store could not be opened or reached, or may not be written. */
  store: 5,
} as const;

export function exitCodeFor(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  if (!(error instanceof RewindError)) return EXIT.failed;
  if (['VALIDATION', 'HTTP_CONFIG', 'SIGNING_KEY', 'UNKNOWN_WORKFLOW'].includes(error.code)) return EXIT.usage;
  if (error.code === 'CONCURRENCY' || error.code === 'EVENT_ID_CONFLICT') return EXIT.conflict;
  if (['STORE_CONFIG', 'STORE_CLOSED', 'STORE_READ_ONLY', 'PROJECTIONS_UNSUPPORTED'].includes(error.code)) return EXIT.store;
  if (error.code.endsWith('NOT_FOUND') || error.code === 'TIME_TRAVEL') return EXIT.notFound;
  if (error.code === 'FORK_POINT') return EXIT.usage;
  return EXIT.failed;
}

/** A command that acted on a run: 1 when the run ended failed or needs attention, as the README's exit codes say. */
export function exitCodeForRun(status: string): number {
  return status === 'needs_attention' || status === 'failed' ? EXIT.failed : EXIT.ok;
}
