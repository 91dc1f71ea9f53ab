import type { KeyObject } from 'node:crypto';
import { ValidationError } from '../../events/errors.js';
import { checkSignature, type Digest, parseDigest } from '../../events/tree-head.js';
import { SEAL_STREAM, SEAL_TYPE } from '../system-streams.js';
import type { RawRow, StorageBackend } from '../types.js';
import type { Expectation } from './auditor.js';
import type { Problem, VerifyReport } from './report.js';
import { checkRow, parseContent } from './row.js';
import { streamRows } from './scan.js';

/** The seal a row of the seal stream holds, or why it holds none. */
export function sealOfRow(raw: RawRow): { digest: Digest; position: number; version: number } | { why: string } {
  const checked = checkRow(raw);
  if ('why' in checked) return { why: `the row cannot be read: ${checked.why}` };
  const { row } = checked;
  if (row.type !== SEAL_TYPE) return { why: `it is a "${row.type}" event, not a seal` };
  const content = parseContent(row);
  if ('why' in content) return { why: `the row cannot be read: ${content.why}` };
  let digest: Digest;
  try {
    digest = parseDigest(content.data, 'it');
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    return { why: error.message };
  }
  if (digest.treeHead.kind !== 'seal') return { why: 'it holds a digest, not a seal' };
  if (digest.treeHead.position >= row.position) {
    return { why: `it claims to cover position ${digest.treeHead.position}, which is not before its own` };
  }
  return { digest, position: row.position, version: row.version };
}

export interface SealsFound {
  /** What the walk holds the log to, one per seal that counts. */
  expectations: Expectation[];
  /** Records of the seal stream that are not valid seals, or whose signature fails. */
  problems: Problem[];
  summary: VerifyReport['seals'];
}

/**
 * Reads the seal stream. With keys, a seal counts when one of them signed it;
 * a seal whose key is given but whose signature fails is a problem (forged or
 * edited), and one signed by another key is only counted as unverified.
 * Without keys every well-formed seal counts, unauthenticated: it still
 * catches what a careless edit leaves behind.
 */
export async function readSeals(backend: StorageBackend, keys: readonly KeyObject[], onlyStream?: string): Promise<SealsFound> {
  const found: SealsFound = { expectations: [], problems: [], summary: { found: 0, verified: 0, unverified: 0, coveredTo: 0 } };
  for await (const raw of streamRows(backend, SEAL_STREAM)) consider(found, raw, keys, onlyStream);
  return found;
}

function consider(found: SealsFound, raw: RawRow, keys: readonly KeyObject[], onlyStream: string | undefined): void {
  const { summary } = found;
  summary.found++;
  const seal = sealOfRow(raw);
  const at = { streamId: SEAL_STREAM, version: typeof raw.version === 'number' ? raw.version : undefined, position: raw.position };
  if ('why' in seal) {
    found.problems.push({ kind: 'bad-seal', ...at, message: `not a valid seal: ${seal.why}` });
    return;
  }
  const { treeHead, signature } = seal.digest;
  if (keys.length > 0) {
    const verdict = checkSignature(treeHead, signature, keys);
    if (verdict === 'invalid') {
      found.problems.push({
        kind: 'bad-seal',
        ...at,
        message: `the seal’s signature does not hold under key ${treeHead.keyId}: it was forged or edited`,
      });
      return;
    }
    if (verdict === 'unknown-key') {
      summary.unverified++;
      return;
    }
    summary.verified++;
  } else summary.unverified++;
  summary.coveredTo = Math.max(summary.coveredTo, treeHead.position);
  const heads = onlyStream === undefined ? seal.digest.heads : seal.digest.heads.filter(([id]) => id === onlyStream);
  found.expectations.push({
    name: `the seal at position ${seal.position}`,
    size: treeHead.size,
    position: treeHead.position,
    root: treeHead.root,
    peaks: seal.digest.peaks,
    heads,
    complete: false,
  });
}
