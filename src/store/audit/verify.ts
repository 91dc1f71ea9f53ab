import type { KeyObject } from 'node:crypto';
import { publicKeyFrom } from '../../events/signing.js';
import { checkSignature, type Digest, parseDigest } from '../../events/tree-head.js';
import type { StorageBackend } from '../types.js';
import { Auditor, type Expectation } from './auditor.js';
import type { VerifyOptions, VerifyProgress, VerifyReport } from './report.js';
import { logRows, SCAN_PAGE, streamRows } from './scan.js';
import { readSeals } from './seals.js';

/** Feeds the auditor every row up to position `to`, reporting progress every page. */
async function walkLog(backend: StorageBackend, auditor: Auditor, to: number, onProgress?: (p: VerifyProgress) => void): Promise<void> {
  for await (const raw of logRows(backend, 1, to)) {
    auditor.feed(raw);
    if (onProgress && auditor.events % SCAN_PAGE === 0) onProgress({ position: raw.position, head: to, events: auditor.events });
  }
  onProgress?.({ position: to, head: to, events: auditor.events });
}

/** store.verify(): see EventStore.verify. */
export async function verifyLog(backend: StorageBackend, options: VerifyOptions = {}): Promise<VerifyReport> {
  return (await audit(backend, options)).report;
}

/**
 * Verification, with the auditor that did it, whose tree and heads a digest
 * signs. `upTo` stops the walk at a position (default the head); seals
 * covering more are left out.
 */
export async function audit(
  backend: StorageBackend,
  options: VerifyOptions & { upTo?: number },
): Promise<{ report: VerifyReport; auditor: Auditor }> {
  const keys = (options.publicKeys ?? []).map((k) => publicKeyFrom(k));
  const digest = options.digest === undefined ? undefined : parseDigest(options.digest, 'the digest');
  const seals = await readSeals(backend, keys, options.streamId);
  const expectations = seals.expectations.filter((x) => options.upTo === undefined || x.position <= options.upTo);
  if (digest) expectations.push(digestExpectation(digest, options.streamId));
  const auditor = new Auditor({
    scope: options.streamId === undefined ? 'log' : 'stream',
    densePositions: backend.densePositions,
    expectations,
    maxProblems: options.maxProblems,
  });
  for (const problem of seals.problems) auditor.report(problem);
  const digestSummary = digest && digestCheck(digest, keys, auditor);

  let position: number;
  if (options.streamId === undefined) {
    position = options.upTo ?? (await backend.headPosition());
    await walkLog(backend, auditor, position, options.onProgress);
  } else {
    position = await walkStream(backend, auditor, options.streamId);
    options.onProgress?.({ position, head: position, events: auditor.events });
  }
  auditor.finish();
  let empty = await backend.emptyStreams();
  if (options.streamId !== undefined) empty = empty.filter((s) => s === options.streamId);
  for (const streamId of empty) {
    auditor.report({
      kind: 'empty-stream',
      streamId,
      version: 1,
      message: 'the stream was begun but holds no event: all its events were deleted',
    });
  }
  const problems = [...auditor.problems].sort((a, b) => (a.position ?? Number.MAX_VALUE) - (b.position ?? Number.MAX_VALUE));
  const report: VerifyReport = {
    ok: auditor.problemCount === 0,
    streams: auditor.streams + empty.length,
    events: auditor.events,
    position,
    problems,
    problemCount: auditor.problemCount,
    seals: seals.summary,
    ...(digestSummary ? { digest: digestSummary } : {}),
  };
  return { report, auditor };
}

async function walkStream(backend: StorageBackend, auditor: Auditor, streamId: string): Promise<number> {
  let last = 0;
  for await (const raw of streamRows(backend, streamId)) {
    auditor.feed(raw);
    last = Math.max(last, raw.position);
  }
  return last;
}

export function digestExpectation(digest: Digest, onlyStream?: string): Expectation {
  const { treeHead } = digest;
  return {
    name: 'the digest',
    size: treeHead.size,
    position: treeHead.position,
    root: treeHead.root,
    peaks: digest.peaks,
    heads: onlyStream === undefined ? digest.heads : digest.heads.filter(([id]) => id === onlyStream),
    complete: onlyStream === undefined,
  };
}

function digestCheck(digest: Digest, keys: readonly KeyObject[], auditor: Auditor): NonNullable<VerifyReport['digest']> {
  const { treeHead } = digest;
  const signature = keys.length === 0 ? 'unchecked' : checkSignature(treeHead, digest.signature, keys);
  if (signature === 'invalid' || signature === 'unknown-key') {
    auditor.report({
      kind: 'bad-digest',
      position: treeHead.position,
      message:
        signature === 'invalid'
          ? `the digest’s signature does not hold under key ${treeHead.keyId}: the digest was forged or edited`
          : `the digest is signed by key ${treeHead.keyId}, which is not among the keys given`,
    });
  }
  return { position: treeHead.position, size: treeHead.size, signature };
}
