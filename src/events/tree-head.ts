import { hash, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from './canonical.js';
import { ValidationError } from './errors.js';
import { peakSizes, rootOfPeaks } from './merkle.js';
import { keyIdOf, signStatement, verifyStatement } from './signing.js';

/**
 * A signed tree head: one statement, signed with Ed25519, that the log held
 * exactly `size` events at or below `position`, whose Merkle tree (in
 * position order, see eventLeaf) has this `root`. It is the small thing an
 * auditor keeps; a proof of one event carries it.
 *
 * A digest (kept outside the database) and a seal (written into the log)
 * are both a tree head plus what lets verification name what changed: the
 * tree's peaks (to narrow a difference down to a range of positions) and
 * stream heads (to name a stream that lost its newest events or was
 * rewritten). A digest lists every stream; a seal the streams changed since
 * the previous seal.
 */
export interface TreeHead {
  format: typeof TREE_HEAD_FORMAT;
  kind: 'digest' | 'seal';
  /** How many events are at or below `position`. */
  size: number;
  position: number;
  /** Merkle root (RFC 9162) over those events' leaves in position order. */
  root: string;
  /** SHA-256 of the canonical JSON of the listed stream heads: the signature covers them through it. */
  heads: string;
  /** The listed heads are those of the streams that changed after this position (0: every stream). */
  since: number;
  /** When it was signed (ISO-8601 UTC). */
  at: string;
  keyId: string;
}

/** A stream's newest event at or below the tree head's position. */
export type StreamHead = [streamId: string, version: number, position: number, hash: string];

export interface Digest {
  treeHead: TreeHead;
  /** Ed25519, base64, over the tree head. */
  signature: string;
  /** Roots of the tree's perfect subtrees, left to right; they fold into the root. */
  peaks: string[];
  /** Sorted by stream id. */
  heads: StreamHead[];
}

export const TREE_HEAD_FORMAT = 'rewind-tree-head/1';
const SIGNED_AS = 'rewind tree head v1';

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 in lowercase hex');
const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const TreeHeadSchema = z.strictObject({
  format: z.literal(TREE_HEAD_FORMAT),
  kind: z.enum(['digest', 'seal']),
  size: count,
  position: count,
  root: hex64,
  heads: hex64,
  since: count,
  at: z.string(),
  keyId: z.string().regex(/^[0-9a-f]{16}$/),
});

const DigestSchema = z.strictObject({
  treeHead: TreeHeadSchema,
  signature: z.string().min(1),
  peaks: z.array(hex64),
  heads: z.array(z.tuple([z.string().min(1), count.min(1), count.min(1), hex64])),
});

/** SHA-256 of the heads' canonical JSON. */
export function headsHash(heads: readonly StreamHead[]): string {
  return hash('sha256', canonicalJson(heads), 'hex');
}

export interface Unsigned {
  kind: TreeHead['kind'];
  size: number;
  position: number;
  since: number;
  peaks: string[];
  heads: StreamHead[];
  at: string;
}

/** Signs what verification will hold the log to. */
export function signDigest(unsigned: Unsigned, key: KeyObject): Digest {
  const heads = [...unsigned.heads].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const treeHead: TreeHead = {
    format: TREE_HEAD_FORMAT,
    kind: unsigned.kind,
    size: unsigned.size,
    position: unsigned.position,
    root: rootOfPeaks(unsigned.peaks),
    heads: headsHash(heads),
    since: unsigned.since,
    at: unsigned.at,
    keyId: keyIdOf(key),
  };
  return { treeHead, signature: signTreeHead(treeHead, key), peaks: [...unsigned.peaks], heads };
}

export function signTreeHead(treeHead: TreeHead, key: KeyObject): string {
  return signStatement(SIGNED_AS, treeHead, key);
}

/**
 * 'valid' when one of `keys` has the tree head's key id and its signature
 * holds, 'invalid' when such a key's signature does not hold (a forged or
 * edited statement), 'unknown-key' when none of the keys has that id.
 */
export function checkSignature(treeHead: TreeHead, signature: string, keys: readonly KeyObject[]): 'valid' | 'invalid' | 'unknown-key' {
  const key = keys.find((k) => keyIdOf(k) === treeHead.keyId);
  if (!key) return 'unknown-key';
  return verifyStatement(SIGNED_AS, treeHead, signature, key) ? 'valid' : 'invalid';
}

/** A digest read from a file or a seal: well-formed, or a ValidationError listing every problem. */
export function parseDigest(value: unknown, what: string): Digest {
  const parsed = DigestSchema.safeParse(value);
  if (!parsed.success) {
    throw new ValidationError(
      `${what} is not a Rewind digest`,
      parsed.error.issues.map((i) => `${i.path.join('.') || '$'}: ${i.message}`),
      'make one with `rewind digest`',
    );
  }
  const digest = parsed.data as Digest;
  const issues = inconsistencies(digest);
  if (issues.length > 0) throw new ValidationError(`${what} does not hold together`, issues);
  return digest;
}

/** What a well-formed digest can still get wrong: peaks that do not make its root, heads that are not the ones signed. */
function inconsistencies(d: Digest): string[] {
  const issues: string[] = [];
  const { treeHead: th } = d;
  if (d.peaks.length !== (th.size === 0 ? 0 : peakSizes(th.size).length)) {
    issues.push(`a tree of ${th.size} events has ${peakSizes(th.size).length} peaks, not ${d.peaks.length}`);
  } else if (rootOfPeaks(d.peaks) !== th.root) issues.push('the peaks do not fold into the root');
  if (headsHash(d.heads) !== th.heads) issues.push('the stream heads are not the ones the tree head names');
  if (th.size > th.position) issues.push(`${th.size} events cannot fit in positions 1 to ${th.position}`);
  for (let i = 0; i < d.heads.length; i++) {
    const [streamId, , position] = d.heads[i] as StreamHead;
    if (i > 0 && (d.heads[i - 1] as StreamHead)[0] >= streamId) issues.push(`heads[${i}]: stream ids must be sorted and unique`);
    if (position > th.position || position <= th.since)
      issues.push(`heads[${i}]: position ${position} is outside (${th.since}, ${th.position}]`);
  }
  return issues;
}
