import { hash } from 'node:crypto';
import { scratch, writeHash } from './bytes.js';
import { canonicalJson } from './canonical.js';
import type { EventEnvelope, EventMetadata } from './envelope.js';

/** The link before a stream's first event. */
export const GENESIS_HASH = '0'.repeat(64);

/** The parts of an event its author decides; re-appending the same id must repeat them exactly. */
export interface EventContent {
  id: string;
  streamId: string;
  type: string;
  schemaVersion: number;
  data: unknown;
  metadata: EventMetadata;
}

/** SHA-256 of the canonical content. Used both for idempotent re-appends and as input to the chain. */
export function contentDigest(event: EventContent): string {
  const { id, streamId, type, schemaVersion, data, metadata } = event;
  return hash('sha256', canonicalJson({ id, streamId, type, schemaVersion, data, metadata }), 'hex');
}

/**
 * contentDigest() from data and metadata already in canonical JSON (as the
 * store writes and keeps them): the same bytes in sorted key order, built
 * without parsing and serialising again.
 */
export function contentDigestOfJson(
  id: string,
  streamId: string,
  type: string,
  schemaVersion: number,
  dataJson: string,
  metadataJson: string,
): string {
  return hash(
    'sha256',
    `{"data":${dataJson},"id":${JSON.stringify(id)},"metadata":${metadataJson},"schemaVersion":${schemaVersion},"streamId":${JSON.stringify(streamId)},"type":${JSON.stringify(type)}}`,
    'hex',
  );
}

/** Where an event sits in the log and what it links to: with its content digest, what its leaf commits to. */
export interface LeafFields {
  position: number;
  version: number;
  recordedAt: string;
  /** The stored link of its stream's chain. */
  hash: string;
}

/**
 * The event's leaf in the log's Merkle tree (events/merkle.ts), in position
 * order: H(0x00 ‖ link ‖ content digest ‖ "position\nversion\nrecordedAt").
 * It commits to the content, the place in the log and in the stream, and the
 * chain link, so a proof of one event needs the event alone.
 */
export function eventLeaf(event: LeafFields, digest: string): string {
  const place = `${event.position}\n${event.version}\n${event.recordedAt}`;
  const bytes = scratch(65 + 3 * place.length);
  bytes[0] = 0;
  writeHash(bytes, event.hash, 1);
  writeHash(bytes, digest, 33);
  const end = 65 + bytes.write(place, 65, 'utf8');
  return hash('sha256', bytes.subarray(0, end), 'hex');
}

/**
 * One link of a stream's chain: H(previous link ‖ version ‖ recordedAt ‖ content digest).
 * The version and time sit outside the digest because the store assigns them,
 * while the digest is computed by the writer; PostgreSQL computes this same link
 * server-side with sha256(), so the formula must stay byte-for-byte simple.
 */
export function chainLink(previous: string, version: number, recordedAt: string, digest: string): string {
  const middle = `${version}\n${recordedAt}\n`;
  const bytes = scratch(64 + 3 * middle.length);
  writeHash(bytes, previous, 0);
  const length = bytes.write(middle, 32, 'utf8');
  writeHash(bytes, digest, 32 + length);
  return hash('sha256', bytes.subarray(0, 64 + length), 'hex');
}

export interface ChainBreak {
  streamId: string;
  version: number;
  eventId: string;
  reason: string;
}

export interface StreamVerification {
  streamId: string;
  ok: boolean;
  events: number;
  /** The last good link; compare it with a copy kept elsewhere to detect a truncated tail. */
  head: string;
  firstBreak?: ChainBreak;
}

/**
 * Walks one stream's chain (events as stored, before any upcasting) and reports
 * the first link that does not hold: an edited event, a removed or reordered one.
 */
export function verifyChain(streamId: string, events: Iterable<EventEnvelope>, expectedHead?: string): StreamVerification {
  let previous = GENESIS_HASH;
  let expectedVersion = 1;
  let count = 0;
  for (const event of events) {
    const fail = (reason: string): StreamVerification => ({
      streamId,
      ok: false,
      events: count,
      head: previous,
      firstBreak: { streamId, version: event.version, eventId: event.id, reason },
    });
    if (event.streamId !== streamId) return fail(`event belongs to stream "${event.streamId}"`);
    if (event.version !== expectedVersion) {
      return fail(`expected version ${expectedVersion} but found ${event.version}: an event was removed or reordered`);
    }
    const link = chainLink(previous, event.version, event.recordedAt, contentDigest(event));
    if (link !== event.hash) {
      return fail('stored hash does not match the event content or its predecessor: the event or an earlier one was edited');
    }
    previous = link;
    expectedVersion++;
    count++;
  }
  if (expectedHead !== undefined && expectedHead !== previous) {
    return {
      streamId,
      ok: false,
      events: count,
      head: previous,
      firstBreak: {
        streamId,
        version: expectedVersion,
        eventId: '',
        reason: `the stream's recorded head ${expectedHead.slice(0, 12)}… is not the last event's hash: events were removed from the end`,
      },
    };
  }
  return { streamId, ok: true, events: count, head: previous };
}
