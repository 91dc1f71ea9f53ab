import { z } from 'zod';
import type { EventEnvelope } from './envelope.js';
import { ValidationError } from './errors.js';
import { contentDigest, eventLeaf } from './hash.js';
import { verifyInclusion } from './merkle.js';
import { type KeyInput, publicKeyFrom } from './signing.js';
import { checkSignature, type TreeHead, TreeHeadSchema } from './tree-head.js';

/**
 * That one event is in the log: the event as stored, its leaf's place in the
 * tree of a signed tree head, and the sibling hashes from the leaf to the
 * root. Whoever holds the public key checks it with the event alone, without
 * the log and without trusting whoever handed it over.
 */
export interface InclusionProof {
  format: typeof PROOF_FORMAT;
  /** As stored (not upcast): what the leaf commits to. */
  event: EventEnvelope;
  /** The leaf's index: how many events precede it in the log. */
  index: number;
  path: string[];
  treeHead: TreeHead;
  signature: string;
}

export const PROOF_FORMAT = 'rewind-inclusion-proof/1';

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const ProofSchema = z.strictObject({
  format: z.literal(PROOF_FORMAT),
  event: z.strictObject({
    id: z.string().min(1),
    streamId: z.string().min(1),
    version: z.number().int().min(1),
    position: z.number().int().min(1),
    type: z.string().min(1),
    schemaVersion: z.number().int().min(1),
    data: z.unknown(),
    metadata: z.record(z.string(), z.unknown()),
    recordedAt: z.string(),
    hash: hex64,
  }),
  index: z.number().int().nonnegative(),
  path: z.array(hex64).max(64),
  treeHead: TreeHeadSchema,
  signature: z.string().min(1),
});

export type ProofCheck =
  | { ok: true; event: EventEnvelope; treeHead: TreeHead }
  | { ok: false; reason: string; event?: EventEnvelope; treeHead?: TreeHead };

/**
 * Checks a proof against the signer's public key(s). A malformed proof is a
 * ValidationError; a well-formed one that does not hold is `ok: false` with
 * the reason.
 */
export function checkProof(value: unknown, publicKeys: KeyInput | readonly KeyInput[]): ProofCheck {
  const parsed = ProofSchema.safeParse(value);
  if (!parsed.success) {
    throw new ValidationError(
      'not a Rewind inclusion proof',
      parsed.error.issues.map((i) => `${i.path.join('.') || '$'}: ${i.message}`),
      'make one with `rewind prove EVENT_ID`',
    );
  }
  const proof = parsed.data as InclusionProof;
  const { event, treeHead } = proof;
  const keys = (Array.isArray(publicKeys) ? publicKeys : [publicKeys]).map((k: KeyInput) => publicKeyFrom(k));
  const fail = (reason: string): ProofCheck => ({ ok: false, reason, event, treeHead });
  const signature = checkSignature(treeHead, proof.signature, keys);
  if (signature === 'unknown-key') return fail(`the tree head is signed by key ${treeHead.keyId}, which is not among the keys given`);
  if (signature === 'invalid') return fail('the tree head’s signature does not hold: it was forged or edited');
  if (event.position > treeHead.position) {
    return fail(`the event is at position ${event.position}, after the tree head's last position ${treeHead.position}`);
  }
  const leaf = eventLeaf(event, contentDigest(event));
  if (!verifyInclusion(leaf, proof.index, treeHead.size, proof.path, treeHead.root)) {
    return fail(`the event is not leaf ${proof.index} of the signed tree: it, its place or the path was changed`);
  }
  return { ok: true, event, treeHead };
}
