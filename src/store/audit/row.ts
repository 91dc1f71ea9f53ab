import { hash } from 'node:crypto';
import type { EventEnvelope, EventMetadata } from '../../events/envelope.js';
import { contentDigestOfJson, eventLeaf } from '../../events/hash.js';
import type { RawRow } from '../types.js';

/** A stored row whose fields have the types an event needs. Its JSON text may still not parse. */
export interface StoredRow {
  position: number;
  id: string;
  streamId: string;
  version: number;
  type: string;
  schemaVersion: number;
  /** JSON text as stored. */
  data: string;
  metadata: string;
  recordedAt: string;
  hash: string;
  digest: string;
}

const isText = (v: unknown): v is string => typeof v === 'string';
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;

/** The row with its fields' types checked, or what is wrong with it. */
export function checkRow(raw: RawRow): { row: StoredRow } | { why: string } {
  const wrong: string[] = [];
  if (!isText(raw.id) || raw.id.length === 0) wrong.push('id');
  if (!isText(raw.streamId) || raw.streamId.length === 0) wrong.push('stream id');
  if (!isCount(raw.version)) wrong.push('version');
  if (!isText(raw.type)) wrong.push('type');
  if (!isCount(raw.schemaVersion)) wrong.push('schema version');
  if (!isText(raw.data)) wrong.push('data');
  if (!isText(raw.metadata)) wrong.push('metadata');
  if (!isText(raw.recordedAt)) wrong.push('recorded time');
  // A hash that is not hex is still read: it simply will not be the link, and is reported as such.
  if (!isText(raw.hash)) wrong.push('hash');
  if (!isText(raw.digest)) wrong.push('content digest');
  if (wrong.length > 0) return { why: `its ${wrong.join(', ')} ${wrong.length === 1 ? 'is' : 'are'} not of the stored type` };
  return { row: raw as StoredRow };
}

/** The parsed data and metadata, or why they cannot be read. */
export function parseContent(row: StoredRow): { data: unknown; metadata: EventMetadata } | { why: string } {
  let data: unknown;
  let metadata: unknown;
  try {
    data = JSON.parse(row.data);
  } catch (error) {
    return { why: `its data is not JSON (${(error as Error).message})` };
  }
  try {
    metadata = JSON.parse(row.metadata);
  } catch (error) {
    return { why: `its metadata is not JSON (${(error as Error).message})` };
  }
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) return { why: 'its metadata is not a JSON object' };
  return { data, metadata: metadata as EventMetadata };
}

/** contentDigest() of the row from its stored JSON text: equal to the digest of its values for every row Rewind writes. */
export function storedDigest(row: StoredRow): string {
  return contentDigestOfJson(row.id, row.streamId, row.type, row.schemaVersion, row.data, row.metadata);
}

/** The row's leaf in the log's Merkle tree. The sealer, verification and proofs all compute it here. */
export function leafOfRow(row: StoredRow): string {
  return eventLeaf(row, storedDigest(row));
}

/** A leaf for a row that cannot be read: still one leaf per position, so later leaves keep their places, and it matches no sealed leaf. */
export function leafOfUnreadable(raw: RawRow): string {
  return hash('sha256', `unreadable row at position ${raw.position}`, 'hex');
}

/** The row as an event (not upcast), when its JSON parses. */
export function envelopeOf(row: StoredRow, content: { data: unknown; metadata: EventMetadata }): EventEnvelope {
  const { id, streamId, version, position, type, schemaVersion, recordedAt, hash: link } = row;
  return { id, streamId, version, position, type, schemaVersion, data: content.data, metadata: content.metadata, recordedAt, hash: link };
}
