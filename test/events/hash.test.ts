import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EventEnvelope, EventMetadata } from '../../src/events/envelope.js';
import { chainLink, contentDigest, GENESIS_HASH, verifyChain } from '../../src/events/hash.js';
import { uuidv7 } from '../../src/events/ids.js';
import { EventRegistry } from '../../src/events/registry.js';
import { prepareAppends } from '../../src/store/prepare.js';

function chain(streamId: string, n: number): EventEnvelope[] {
  const events: EventEnvelope[] = [];
  let previous = GENESIS_HASH;
  for (let version = 1; version <= n; version++) {
    const base = { id: `e${version}`, streamId, type: 'T', schemaVersion: 1, data: { version }, metadata: {} };
    const recordedAt = new Date(Date.UTC(2026, 0, 1, 0, 0, version)).toISOString();
    const hash = chainLink(previous, version, recordedAt, contentDigest(base));
    events.push({ ...base, version, position: version, recordedAt, hash });
    previous = hash;
  }
  return events;
}

describe('hash chain', () => {
  it('verifies an untouched stream and reports its head', () => {
    const events = chain('s', 5);
    expect(verifyChain('s', events, events[4]!.hash)).toEqual({ streamId: 's', ok: true, events: 5, head: events[4]!.hash });
  });

  it('finds an edited event', () => {
    const events = chain('s', 5);
    events[2] = { ...events[2]!, data: { version: 33 } };
    expect(verifyChain('s', events).firstBreak).toMatchObject({ version: 3, eventId: 'e3', reason: expect.stringContaining('edited') });
  });

  it('finds an edited time or metadata', () => {
    const events = chain('s', 3);
    expect(
      verifyChain(
        's',
        events.map((e, i) => (i === 1 ? { ...e, recordedAt: '2020-01-01T00:00:00.000Z' } : e)),
      ).firstBreak?.version,
    ).toBe(2);
    expect(
      verifyChain(
        's',
        events.map((e, i) => (i === 0 ? { ...e, metadata: { actor: 'mallory' } } : e)),
      ).firstBreak?.version,
    ).toBe(1);
  });

  it('finds a removed, a reordered and a truncated event', () => {
    const events = chain('s', 5);
    expect(verifyChain('s', [events[0]!, events[2]!, events[3]!]).firstBreak).toMatchObject({
      version: 3,
      reason: expect.stringContaining('removed'),
    });
    expect(verifyChain('s', [events[1]!, events[0]!]).firstBreak?.version).toBe(2);
    expect(verifyChain('s', events.slice(0, 4), events[4]!.hash).firstBreak?.reason).toContain('removed from the end');
  });

  it('finds an event renumbered to hide a removal', () => {
    const events = chain('s', 3);
    const renumbered = [events[0]!, { ...events[2]!, version: 2 }];
    expect(verifyChain('s', renumbered).ok).toBe(false);
  });

  it('digests prepared events exactly as contentDigest does (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.dictionary(fc.string(), fc.jsonValue()), fc.string({ minLength: 1 }), (data, metadata, type) => {
        const [prepared] = prepareAppends([{ streamId: 's', events: [{ id: 'x', type, data, metadata: metadata as EventMetadata }] }], {
          registry: new EventRegistry(),
          now: () => '2026-01-01T00:00:00.000Z',
        });
        const event = prepared!.events[0]!;
        expect(event.digest).toBe(
          contentDigest({ id: 'x', streamId: 's', type, schemaVersion: 1, data: event.data, metadata: event.metadata }),
        );
      }),
    );
  });
});

describe('uuidv7', () => {
  it('is a version 7 UUID that sorts by time', () => {
    const a = uuidv7(1_000);
    const b = uuidv7(2_000);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a < b).toBe(true);
  });
});
