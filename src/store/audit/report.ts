import type { KeyInput } from '../../events/signing.js';
import type { Digest } from '../../events/tree-head.js';

/** What verification can find wrong. Each names the stream, version and position it can. */
export type ProblemKind =
  /** A row that cannot be read as an event: a field of the wrong type, JSON that does not parse. */
  | 'undecodable'
  /** The stored hash is not the link of the event's content and its predecessor: the event or its hash was edited. */
  | 'hash-mismatch'
  /** The stored content digest (kept to recognise retried appends) does not match the content. */
  | 'digest-mismatch'
  /** A stream skips versions: events were deleted from its middle or start. */
  | 'missing-versions'
  /** A stream's version sits at a lower position than an earlier version: events were moved. */
  | 'out-of-order'
  /** Positions that a backend promising dense positions does not hold: events were deleted. */
  | 'missing-positions'
  /** A stream recorded as begun that holds no event. */
  | 'empty-stream'
  /** Fewer events than a seal or digest recorded: a stream's newest events, or the log's, were deleted. */
  | 'missing-events'
  /** Events a seal or digest did not record at or below its position: added, or moved from later. */
  | 'unexpected-events'
  /** A stream's head is not the one a seal or digest recorded: the stream was rewritten (or its head moved). */
  | 'head-mismatch'
  /** The Merkle root differs from a seal's or digest's with every count and head equal: events were replaced or reordered. */
  | 'root-mismatch'
  /** A record in the seal stream that is not a valid seal, or whose signature does not hold. */
  | 'bad-seal'
  /** The digest's signature does not hold with the keys given. */
  | 'bad-digest';

export interface Problem {
  kind: ProblemKind;
  /** What is wrong, in a sentence. */
  message: string;
  streamId?: string;
  version?: number;
  position?: number;
  eventId?: string;
}

export interface VerifyProgress {
  /** The position reached. */
  position: number;
  /** The last position to verify. */
  head: number;
  events: number;
}

export interface VerifyOptions {
  /** Only this stream's chain (and the heads seals recorded for it); otherwise the whole log. */
  streamId?: string;
  /** A digest (store.digest(), `rewind digest`) the log must still hold exactly. */
  digest?: Digest;
  /** Public keys (or the private key) that seals and the digest must be signed with. Without them, seals are compared but not authenticated. */
  publicKeys?: KeyInput[];
  /** Called after each page of events. */
  onProgress?: (progress: VerifyProgress) => void;
  /** Problems listed in the report (all are counted); default 1000. */
  maxProblems?: number;
}

export interface VerifyReport {
  ok: boolean;
  streams: number;
  events: number;
  /** The highest position verified: the head when verification began. */
  position: number;
  /** In the order found (position order); at most maxProblems. */
  problems: Problem[];
  problemCount: number;
  seals: {
    /** Records in the seal stream. */
    found: number;
    /** Seals whose signature holds under one of the keys given. */
    verified: number;
    /** Seals compared without a key to authenticate them (no keys given, or signed by a key not given). */
    unverified: number;
    /** The highest position a seal that verified (or, without keys, any seal) covers. */
    coveredTo: number;
  };
  digest?: { position: number; size: number; signature: 'valid' | 'invalid' | 'unknown-key' | 'unchecked' };
}

export interface DigestOptions {
  /** The Ed25519 private key. */
  signingKey: KeyInput;
  /** Cover the events at or below this position; default the head. */
  position?: number;
  onProgress?: (progress: VerifyProgress) => void;
}

export interface SealOptions {
  signingKey: KeyInput;
}

export interface Seal {
  digest: Digest;
  /** Where the seal itself was written. */
  position: number;
}

export interface ProveOptions {
  /**
   * Prove against this digest's tree. Otherwise the earliest seal covering the event, or, with `signingKey`,
   * a tree head signed now over the log as it stands (not verified first, unlike digest(): verify before).
   */
  digest?: Digest;
  signingKey?: KeyInput;
}
