import type { EventEnvelope } from '../../events/envelope.js';
import { NotFoundError, ValidationError } from '../../events/errors.js';
import { inclusionPath, MerkleAccumulator } from '../../events/merkle.js';
import { type InclusionProof, PROOF_FORMAT } from '../../events/proof.js';
import { privateKeyFrom } from '../../events/signing.js';
import { parseDigest, signDigest, type TreeHead } from '../../events/tree-head.js';
import { SEAL_STREAM } from '../system-streams.js';
import type { StorageBackend } from '../types.js';
import { LogCorruptError } from './errors.js';
import type { ProveOptions } from './report.js';
import { checkRow, envelopeOf, leafOfRow, leafOfUnreadable, parseContent } from './row.js';
import { logRows, streamRows } from './scan.js';
import { sealOfRow } from './seals.js';

interface Target {
  treeHead: TreeHead;
  signature: string;
}

/**
 * store.prove(): the leaves of the log up to a signed tree head that covers
 * the event (the digest given, else the earliest seal covering it, else,
 * with a signing key, a tree head signed now), checked against that head's
 * root, and the event's audit path in that tree. Reads the log once up to
 * the tree head's position, keeping 32 bytes per event.
 */
export async function proveEvent(
  backend: StorageBackend,
  eventId: string,
  options: ProveOptions,
  now: () => string,
): Promise<InclusionProof> {
  if (typeof eventId !== 'string' || eventId.length === 0) throw new ValidationError('an event id must be a non-empty string');
  const given = options.digest === undefined ? undefined : parseDigest(options.digest, 'the digest');
  const seals = given ? [] : await sealHeads(backend);
  const head = await backend.headPosition();
  const tree = new MerkleAccumulator();
  let leaves: Buffer = Buffer.alloc(32 * 1024);
  let found: { index: number; event: EventEnvelope } | undefined;
  let target: Target | undefined = given;

  for await (const raw of logRows(backend, 1, given ? given.treeHead.position : head)) {
    if (target && raw.position > target.treeHead.position) break;
    const checked = checkRow(raw);
    const leaf = 'why' in checked ? leafOfUnreadable(raw) : leafOfRow(checked.row);
    if (leaves.length < 32 * (tree.size + 1)) leaves = grow(leaves);
    leaves.write(leaf, 32 * tree.size, 'hex');
    if (raw.id === eventId) {
      if ('why' in checked) throw new LogCorruptError(`event ${eventId} cannot be read (${checked.why}), so it cannot be proved`);
      const content = parseContent(checked.row);
      if ('why' in content) throw new LogCorruptError(`event ${eventId} cannot be read (${content.why}), so it cannot be proved`);
      found = { index: tree.size, event: envelopeOf(checked.row, content) };
      // Without a digest, the earliest seal at or after the event is the smallest tree that holds it.
      target ??= seals.find((s) => s.treeHead.position >= raw.position);
    }
    tree.push(leaf);
  }

  if (!found) {
    throw new NotFoundError(
      `event ${eventId}${given ? ` at or before position ${given.treeHead.position}` : ''}`,
      given ? 'the digest was made before the event was appended; prove it against a later digest or seal' : 'check the id',
    );
  }
  if (!target) {
    if (options.signingKey === undefined) {
      throw new NotFoundError(
        `a seal covering event ${eventId}`,
        'seal the log first (`rewind seal`), pass a digest, or give a signing key',
      );
    }
    target = signDigest(
      { kind: 'digest', size: tree.size, position: head, since: 0, peaks: tree.peaks, heads: [], at: now() },
      privateKeyFrom(options.signingKey),
    );
  }
  const { treeHead, signature } = target;
  if (tree.size !== treeHead.size || tree.root() !== treeHead.root) {
    throw new LogCorruptError(
      `the log up to position ${treeHead.position} is no longer the one its ${treeHead.kind} signed (${tree.size} events, ${treeHead.size} signed), so nothing can be proved from it`,
    );
  }
  const path = inclusionPath((i) => leaves.toString('hex', 32 * i, 32 * i + 32), found.index, treeHead.size);
  return { format: PROOF_FORMAT, event: found.event, index: found.index, path, treeHead, signature };
}

/** The seals' tree heads, oldest first; their signatures are the checker's business. */
async function sealHeads(backend: StorageBackend): Promise<Target[]> {
  const heads: Target[] = [];
  for await (const raw of streamRows(backend, SEAL_STREAM)) {
    const seal = sealOfRow(raw);
    if (!('why' in seal)) heads.push({ treeHead: seal.digest.treeHead, signature: seal.digest.signature });
  }
  return heads;
}

function grow(buffer: Buffer): Buffer {
  const bigger = Buffer.alloc(buffer.length * 2);
  buffer.copy(bigger);
  return bigger;
}
