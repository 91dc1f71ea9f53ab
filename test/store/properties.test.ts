import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { EventEnvelope } from '../../src/events/envelope.js';
import { openStore } from '../../src/store/open.js';
import type { EventStore } from '../../src/store/types.js';

const dir = mkdtempSync(join(tmpdir(), 'rewind-properties-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const sqliteFile = () => join(dir, `p-${++files}.db`);

/** An operation of a random workload: a batch of appends issued at once, or a read. */
type Op = { kind: 'append'; stream: number; count: number }[] | { kind: 'read'; stream: number };

const ops = fc.array(
  fc.oneof(
    fc.array(fc.record({ kind: fc.constant('append' as const), stream: fc.nat(4), count: fc.integer({ min: 1, max: 3 }) }), {
      minLength: 1,
      maxLength: 6,
    }),
    fc.record({ kind: fc.constant('read' as const), stream: fc.nat(4) }),
  ),
  { minLength: 1, maxLength: 25 },
);

async function play(store: EventStore, workload: Op[]): Promise<void> {
  for (const op of workload) {
    if (Array.isArray(op)) {
      // Appends issued together interleave inside the store (group commit, concurrent transactions).
      await Promise.all(
        op.map((a) =>
          store.append(
            `s-${a.stream}`,
            Array.from({ length: a.count }, (_, i) => ({ type: 'E', data: { i } })),
          ),
        ),
      );
    } else {
      const events = await store.read(`s-${op.stream}`);
      expect(events.map((e) => e.version)).toEqual(events.map((_, i) => i + 1));
    }
  }
}

function checkLog(all: EventEnvelope[]): void {
  for (let i = 1; i < all.length; i++) expect(all[i]!.position).toBeGreaterThan(all[i - 1]!.position);
  const byStream = new Map<string, number[]>();
  for (const e of all) byStream.set(e.streamId, [...(byStream.get(e.streamId) ?? []), e.version]);
  for (const versions of byStream.values()) expect(versions).toEqual(versions.map((_, i) => i + 1));
}

describe.each([
  ['memory', () => openStore('memory:')],
  ['sqlite', () => openStore(`sqlite:${sqliteFile()}`, { durability: 'normal' })],
])('log invariants on %s (property)', (_name, open) => {
  it('any interleaving of appends and reads keeps versions dense, positions increasing and verify clean', async () => {
    await fc.assert(
      fc.asyncProperty(ops, async (workload) => {
        const store = await open();
        try {
          await play(store, workload);
          checkLog(await store.readAll({ limit: 100_000 }));
          expect((await store.verify()).ok).toBe(true);
        } finally {
          await store.close();
        }
      }),
      { numRuns: 40 },
    );
  });
});

/** Columns whose bytes the hash chain covers, and how to change one character of each while keeping the row readable. */
const COLUMNS = ['data', 'metadata', 'type', 'recorded_at', 'id', 'hash'] as const;

function flipOne(text: string, at: number): string {
  // Change a letter to another letter, a digit to another digit: the edit a forger would make.
  const positions = [...text].map((c, i) => (/[a-zA-Z0-9]/.test(c) ? i : -1)).filter((i) => i >= 0);
  const i = positions[at % positions.length] as number;
  const c = text[i] as string;
  const next = /[0-9]/.test(c)
    ? String((Number(c) + 1) % 10)
    : c === 'z'
      ? 'a'
      : c === 'Z'
        ? 'A'
        : String.fromCharCode(c.charCodeAt(0) + 1);
  return text.slice(0, i) + next + text.slice(i + 1);
}

describe('tamper evidence on SQLite (property)', () => {
  it('editing any character of any stored event makes verify fail at exactly that event', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 12 }),
        fc.nat(),
        fc.constantFrom(...COLUMNS),
        fc.nat(),
        async (count, pick, column, at) => {
          const file = sqliteFile();
          const store = await openStore(`sqlite:${file}`, { durability: 'normal' });
          for (let i = 0; i < count; i++) {
            await store.append(i % 3 === 0 ? 'other' : 'target', [
              { type: 'Noted', data: { i, text: `note ${i}` }, metadata: { actor: 'agent-7' } },
            ]);
          }
          const all = await store.readAll();
          await store.close();
          const victim = all[pick % all.length] as EventEnvelope;

          const db = new Database(file);
          const row = db.prepare(`SELECT ${column} AS v FROM events WHERE position = ?`).get(victim.position) as { v: string };
          db.prepare(`UPDATE events SET ${column} = ? WHERE position = ?`).run(flipOne(row.v, at), victim.position);
          db.close();

          const reopened = await openStore(`sqlite:${file}`);
          const report = await reopened.verify();
          await reopened.close();
          expect(report.ok).toBe(false);
          expect(report.problems).toEqual([
            expect.objectContaining({ streamId: victim.streamId, version: victim.version, position: victim.position }),
          ]);
        },
      ),
      { numRuns: 60 },
    );
  });
});
