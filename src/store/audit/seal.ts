import { ConcurrencyError, EventIdConflictError } from '../../events/errors.js';
import { MerkleAccumulator } from '../../events/merkle.js';
import { type KeyInput, privateKeyFrom, publicKeyFrom } from '../../events/signing.js';
import { checkSignature, type StreamHead, signDigest } from '../../events/tree-head.js';
import { SEAL_STREAM, SEAL_TYPE } from '../system-streams.js';
import type { AppendResult, StorageBackend, StreamAppend } from '../types.js';
import { LogCorruptError } from './errors.js';
import type { Seal } from './report.js';
import { checkRow, leafOfRow } from './row.js';
import { logRows } from './scan.js';
import { sealOfRow } from './seals.js';

/** Bytes of stream heads one seal lists at most: a seal covering more streams stops short, and the next one goes on. */
const HEADS_BUDGET = 200 * 1024;
const HEX64 = /^[0-9a-f]{64}$/;

/** The store's own append, which alone may write to system streams. */
export type SystemAppend = (append: StreamAppend) => Promise<AppendResult>;

/**
 * store.seal(): continues the tree of the newest seal this key signed (or
 * starts it, when there is none) over the events appended since, and writes
 * the signed tree head, its peaks and the heads of the streams changed since
 * as the next event of '$rewind-seals'. Only the new events are read. The
 * seal covers the events below its own position; those appended while it was
 * made are the next seal's. Another process sealing at the same time wins
 * (expected version): then nothing is written and undefined returned.
 */
export async function sealLog(
  backend: StorageBackend,
  signingKey: KeyInput,
  append: SystemAppend,
  now: () => string,
): Promise<Seal | undefined> {
  const key = privateKeyFrom(signingKey);
  const sealVersion = await backend.streamVersion(SEAL_STREAM);
  const start = sealVersion > 0 ? await continuation(backend, sealVersion, [publicKeyFrom(key)]) : FROM_SCRATCH;
  const head = await backend.headPosition();
  const tree = new MerkleAccumulator(start.size, start.peaks);
  const heads = new Map<string, StreamHead>();
  let budget = HEADS_BUDGET;
  let position = start.position;
  let fresh = false;
  for await (const raw of logRows(backend, start.position + 1, head)) {
    const checked = checkRow(raw);
    if ('why' in checked) {
      throw new LogCorruptError(`the row at position ${raw.position} cannot be read (${checked.why}), so the log was not sealed`);
    }
    const { row } = checked;
    if (!HEX64.test(row.hash))
      throw new LogCorruptError(`the hash at position ${row.position} is not a SHA-256, so the log was not sealed`);
    if (!heads.has(row.streamId)) {
      const cost = row.streamId.length + 100;
      if (cost > budget && heads.size > 0) break;
      budget -= cost;
    }
    tree.push(leafOfRow(row));
    heads.set(row.streamId, [row.streamId, row.version, row.position, row.hash]);
    position = row.position;
    // The previous seal alone is nothing new to seal.
    if (row.streamId !== SEAL_STREAM) fresh = true;
  }
  if (!fresh) return undefined;
  const digest = signDigest(
    { kind: 'seal', size: tree.size, position, since: start.position, peaks: tree.peaks, heads: [...heads.values()], at: now() },
    key,
  );
  try {
    const expectedVersion = sealVersion === 0 ? 'no_stream' : sealVersion;
    // The id names what is sealed, so the same log sealed twice holds the same bytes.
    const id = `seal-${position}-${digest.treeHead.root.slice(0, 16)}`;
    const result = await append({ streamId: SEAL_STREAM, expectedVersion, events: [{ id, type: SEAL_TYPE, data: digest }] });
    return { digest, position: result.position };
  } catch (error) {
    if (error instanceof ConcurrencyError || error instanceof EventIdConflictError) return undefined;
    throw error;
  }
}

const FROM_SCRATCH = { size: 0, peaks: [] as string[], position: 0 };

/** Where the newest seal left the tree, when this key signed it; otherwise the tree starts again from the first event. */
async function continuation(
  backend: StorageBackend,
  sealVersion: number,
  keys: Parameters<typeof checkSignature>[2],
): Promise<typeof FROM_SCRATCH> {
  const [raw] = await backend.scanStream(SEAL_STREAM, sealVersion, 1);
  const last = raw && sealOfRow(raw);
  if (!last || 'why' in last || checkSignature(last.digest.treeHead, last.digest.signature, keys) !== 'valid') return FROM_SCRATCH;
  const { treeHead, peaks } = last.digest;
  return { size: treeHead.size, peaks, position: treeHead.position };
}
