import { ValidationError } from '../../events/errors.js';
import { privateKeyFrom } from '../../events/signing.js';
import { type Digest, signDigest } from '../../events/tree-head.js';
import type { StorageBackend } from '../types.js';
import { LogCorruptError } from './errors.js';
import type { DigestOptions } from './report.js';
import { audit } from './verify.js';

/**
 * store.digest(): verifies the log up to the position (chains, rows, the
 * seals signed with this key) and signs its tree head, peaks and every
 * stream's head. A log that does not verify is refused, not signed.
 */
export async function digestLog(backend: StorageBackend, options: DigestOptions, now: () => string): Promise<Digest> {
  const key = privateKeyFrom(options.signingKey);
  const head = await backend.headPosition();
  const position = options.position ?? head;
  if (!Number.isSafeInteger(position) || position < 0 || position > head) {
    throw new ValidationError(`cannot digest the log up to position ${position}`, [], `the log's head is at position ${head}`);
  }
  const { report, auditor } = await audit(backend, { publicKeys: [key], upTo: position, onProgress: options.onProgress, maxProblems: 100 });
  if (!report.ok) throw new LogCorruptError('the log does not verify, so it was not signed', report);
  const { tree } = auditor;
  return signDigest({ kind: 'digest', size: tree.size, position, since: 0, peaks: tree.peaks, heads: auditor.heads(), at: now() }, key);
}
