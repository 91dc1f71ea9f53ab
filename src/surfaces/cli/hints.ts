import type { RewindError } from '../../events/errors.js';
import type { CheckpointNotFoundError, RunStateError } from '../../runtime/errors.js';
import type { HttpConfigError } from '../http/errors.js';

// The hints the CLI gives for the library's typed errors. A library error's hint is in the words of the
// library and the HTTP API (runtime.list(), `to: 'start'`, `past: 'irreversible'`, tokens: { admin }); on the
// terminal the same error is told in the CLI's: commands and flags. Keyed by the error's code, from the facts
// the error carries (never by rewording its hint's text); an error not listed keeps the library's hint.

/** The hint to print for `error`, or undefined for none. */
export function cliHint(error: RewindError): string | undefined {
  switch (error.code) {
    case 'RUN_NOT_FOUND':
      return 'list the runs with `rewind runs`; a run id has no "run-" prefix (its stream has)';
    case 'UNKNOWN_WORKFLOW':
      return 'pass the module that defines it: --workflows <module> (JavaScript, or TypeScript with tsx installed)';
    case 'RUN_STATE':
      return runStateHint(error as RunStateError);
    case 'IRREVERSIBLE_STEP':
      return 'roll back to a point after it, or accept leaving its effect as it is with --past-irreversible';
    case 'CHECKPOINT_NOT_FOUND':
      return checkpointHint(error as CheckpointNotFoundError);
    case 'HTTP_CONFIG':
      return httpConfigHint(error as HttpConfigError);
    case 'STORE_READ_ONLY':
      return 'this command writes: run it where the file and its directory are writable, or on a writable copy';
    case 'STORE_CLOSED':
      return undefined;
    default:
      return error.hint;
  }
}

function runStateHint(error: RunStateError): string | undefined {
  const { status, wanted } = error;
  if (status === 'rolling_back' || status === 'needs_attention') {
    return 'a rollback in progress must finish first: `rewind retry <run>` runs its stuck compensation again, `rewind resolve <run> --note …` records that it was undone by hand';
  }
  if (status === 'waiting' && (wanted === 'cancel' || wanted === 'roll back')) {
    return 'a waiting run moves on when it gets what it waits for (`rewind show <run>` says what: `rewind signal`, `rewind approve` or `rewind reject`), or when its wait times out';
  }
  if (wanted === 'retry a compensation' || wanted === 'resolve by hand') {
    return 'only a run that needs attention has a blocked compensation: `rewind runs --status needs_attention` lists them';
  }
  return error.hint;
}

function checkpointHint(error: CheckpointNotFoundError): string {
  const { known, purpose } = error;
  if (purpose === 'point') {
    return known.length ? `its checkpoints: ${known.join(', ')}` : 'the run has no checkpoint: give --at a version or a time';
  }
  return known.length ? `known checkpoints: ${known.join(', ')} (or --to start)` : 'the run has no checkpoint yet: use --to start';
}

function httpConfigHint(error: HttpConfigError): string | undefined {
  switch (error.problem) {
    case 'exposed':
      return 'set an admin token (--token-admin or REWIND_ADMIN_TOKEN), or listen on loopback (--host 127.0.0.1)';
    case 'token-reused':
      return 'give --token-admin and --token-read (or REWIND_ADMIN_TOKEN and REWIND_READ_TOKEN) different tokens';
    default:
      return error.hint;
  }
}
