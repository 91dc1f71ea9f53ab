import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { chainLink, contentDigestOfJson, GENESIS_HASH } from '../../src/events/hash.js';
import { generateKeyPair } from '../../src/events/signing.js';
import type { Digest } from '../../src/events/tree-head.js';
import { openStore } from '../../src/store/open.js';
import type { EventStore, VerifyReport } from '../../src/store/types.js';
import { databaseUrl, uniqueSchema } from '../support/postgres.js';
import { tempDir } from '../support/temp.js';

/*
 * The same small log on SQLite and PostgreSQL, edited behind Rewind's back in
 * every way the README says verification catches. Each edit must be found and
 * named (kind, stream, version, position), with nothing else reported; the
 * untouched log must verify clean. Ids and times are fixed, so both backends
 * hold the same bytes and one digest serves every copy.
 *
 *   position  1 order-1@1   2 order-2@1   3 order-1@2   4 order-3@1   5 order-2@2
 *             6 order-1@3   7 order-3@2   8 order-2@3   9 order-1@4
 *            10 the seal (covers 1–9)
 *            11 order-1@5  12 order-4@1  13 order-2@4        the digest covers 1–13
 */
const LAYOUT: [string, number][] = [
  ['order-1', 1],
  ['order-2', 1],
  ['order-1', 2],
  ['order-3', 1],
  ['order-2', 2],
  ['order-1', 3],
  ['order-3', 2],
  ['order-2', 3],
  ['order-1', 4],
];
const AFTER_SEAL: [string, number][] = [
  ['order-1', 5],
  ['order-4', 1],
  ['order-2', 4],
];
const keys = generateKeyPair();
const now = () => '2026-11-23T10:00:00.000Z';

async function writeFixture(store: EventStore): Promise<void> {
  const append = ([streamId, version]: [string, number]) =>
    store.append(streamId, [
      {
        id: `${streamId}.${version}`,
        type: version === 1 ? 'Placed' : 'Updated',
        data: { order: streamId, n: version, note: `step ${version}` },
        metadata: { actor: 'agent-7' },
      },
    ]);
  for (const event of LAYOUT) await append(event);
  await store.seal({ signingKey: keys.privateKey });
  for (const event of AFTER_SEAL) await append(event);
}

/** Direct access to the events table, the same for both databases. */
interface Tables {
  get(column: string, position: number): Promise<string>;
  set(column: string, position: number, value: string): Promise<void>;
  remove(...positions: number[]): Promise<void>;
  /** Puts each of two events at the other's position. */
  swap(a: number, b: number): Promise<void>;
  /** Lets the data column hold text that is not JSON (PostgreSQL's json type refuses it otherwise). */
  allowAnyText(): Promise<void>;
}

interface Backend {
  /** A fresh copy of the fixture, its URL and direct access to its tables. */
  copy(): Promise<{ url: string; tables: Tables; done: () => Promise<void> }>;
}

const flip = (text: string, from: string, to: string) => {
  expect(text).toContain(from);
  return text.replace(from, to);
};

function sqlite(): Backend {
  const dir = tempDir('rewind-tamper-');
  const fixture = join(dir, 'fixture.db');
  let copies = 0;
  return {
    async copy() {
      if (copies === 0) {
        const store = await openStore(`sqlite:${fixture}`, { now, durability: 'normal' });
        await writeFixture(store);
        await store.close();
      }
      const file = join(dir, `copy-${++copies}.db`);
      copyFileSync(fixture, file);
      const db = new Database(file);
      const tables: Tables = {
        get: async (column, position) => db.prepare(`SELECT ${column} FROM events WHERE position = ?`).pluck().get(position) as string,
        set: async (column, position, value) => void db.prepare(`UPDATE events SET ${column} = ? WHERE position = ?`).run(value, position),
        remove: async (...positions) => {
          for (const p of positions) db.prepare('DELETE FROM events WHERE position = ?').run(p);
        },
        swap: async (a, b) => {
          const move = db.prepare('UPDATE events SET position = ? WHERE position = ?');
          db.transaction(() => {
            move.run(-1, a);
            move.run(a, b);
            move.run(b, -1);
          })();
        },
        allowAnyText: async () => {},
      };
      return {
        url: `sqlite:${file}`,
        tables,
        done: async () => {
          db.close();
        },
      };
    },
  };
}

function postgres(): Backend {
  return {
    async copy() {
      const schema = uniqueSchema();
      const url = `${databaseUrl()}?schema=${schema}`;
      const store = await openStore(url, { now });
      await writeFixture(store);
      await store.close();
      const client = new pg.Client({ connectionString: databaseUrl() });
      await client.connect();
      const events = `"${schema}".events`;
      const tables: Tables = {
        get: async (column, position) =>
          (await client.query(`SELECT ${column}::text AS v FROM ${events} WHERE position = $1`, [position])).rows[0].v,
        set: async (column, position, value) =>
          void (await client.query(`UPDATE ${events} SET ${column} = $1 WHERE position = $2`, [value, position])),
        remove: async (...positions) => void (await client.query(`DELETE FROM ${events} WHERE position = ANY ($1)`, [positions])),
        // Positions are an identity column: the rows go back in with each other's, as an INSERT may say.
        swap: async (a, b) => {
          await client.query('BEGIN');
          const { rows } = await client.query(`DELETE FROM ${events} WHERE position IN ($1, $2) RETURNING *`, [a, b]);
          for (const row of rows) {
            const columns = Object.keys(row);
            const values = columns.map((c) => (c === 'position' ? (Number(row.position) === a ? b : a) : row[c]));
            await client.query(
              `INSERT INTO ${events} (${columns.join(', ')}) OVERRIDING SYSTEM VALUE VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`,
              values.map((v) => (v !== null && typeof v === 'object' ? JSON.stringify(v) : v)),
            );
          }
          await client.query('COMMIT');
        },
        allowAnyText: async () => void (await client.query(`ALTER TABLE ${events} ALTER COLUMN data TYPE text`)),
      };
      return { url, tables, done: () => client.end() };
    },
  };
}

const backends: [string, () => Backend][] = [
  ['SQLite', sqlite],
  ['PostgreSQL', postgres],
];

describe.each(backends)('an audit trail that proves what it claims, on %s', (name, make) => {
  const dense = name === 'SQLite';
  let backend: Backend;
  let digest: Digest;

  beforeAll(async () => {
    backend = make();
    const { url, done } = await backend.copy();
    const store = await openStore(url, { now });
    digest = await store.digest({ signingKey: keys.privateKey });
    await store.close();
    await done();
  });

  /** A copy of the fixture, edited by `edit`, then verified: with the digest and the key unless told otherwise. */
  async function verifyAfter(
    edit: (t: Tables) => Promise<void>,
    options: { digest?: boolean; keys?: boolean } = {},
  ): Promise<VerifyReport> {
    const { url, tables, done } = await backend.copy();
    try {
      await edit(tables);
    } finally {
      await done();
    }
    const store = await openStore(url);
    try {
      return await store.verify({
        ...(options.digest === false ? {} : { digest }),
        publicKeys: options.keys === false ? [] : [keys.publicKey],
      });
    } finally {
      await store.close();
    }
  }

  const found = (report: VerifyReport) =>
    report.problems.map(({ kind, streamId, version, position }) => ({ kind, streamId, version, position }));

  it('verifies the untouched log clean, against its seal and its digest', async () => {
    const report = await verifyAfter(async () => {});
    expect(report).toMatchObject({ ok: true, streams: 5, events: 13, position: 13, problems: [], problemCount: 0 });
    expect(report.seals).toEqual({ found: 1, verified: 1, unverified: 0, coveredTo: 9 });
    expect(report.digest).toEqual({ position: 13, size: 13, signature: 'valid' });
  });

  const edited = { kind: 'hash-mismatch', streamId: 'order-2', version: 2, position: 5 };
  it.each([
    ['data', '"n":2', '"n":7'],
    ['metadata', 'agent-7', 'agent-8'],
    ['type', 'Updated', 'Updatee'],
    ['recorded_at', '10:00:00', '10:00:01'],
  ])('finds one flipped byte in %s, at that event', async (column, from, to) => {
    const report = await verifyAfter(async (t) => t.set(column, 5, flip(await t.get(column, 5), from, to)));
    expect(found(report)).toEqual([edited]);
  });

  it('finds a flipped byte in a hash, and only there (the next event still links to what the hash was)', async () => {
    const report = await verifyAfter(async (t) => {
      t.set('hash', 5, flip(await t.get('hash', 5), (await t.get('hash', 5)).slice(0, 2), 'zz'));
      // The head the seal recorded, too: the edit is reported once, not again as a rewritten stream.
      const head = await t.get('hash', 9);
      await t.set('hash', 9, `${head[1]}${head[0]}${head.slice(2)}`);
    });
    expect(found(report)).toEqual([edited, { kind: 'hash-mismatch', streamId: 'order-1', version: 4, position: 9 }]);
  });

  it('reports JSON broken by one byte as an undecodable row, and goes on to the other streams', async () => {
    const report = await verifyAfter(async (t) => {
      await t.allowAnyText();
      await t.set('data', 5, flip(await t.get('data', 5), '{', 'z'));
    });
    expect(found(report)).toEqual([{ kind: 'undecodable', streamId: 'order-2', version: 2, position: 5 }]);
    expect(report.problems[0]?.message).toContain('its data is not JSON');
    expect(report.events).toBe(13);
  });

  it('finds the first event of a stream deleted', async () => {
    const report = await verifyAfter((t) => t.remove(4));
    expect(found(report)).toEqual([
      ...(dense ? [{ kind: 'missing-positions', streamId: undefined, version: undefined, position: 4 }] : []),
      { kind: 'missing-versions', streamId: 'order-3', version: 1, position: 7 },
    ]);
  });

  it('finds a middle event of a stream deleted', async () => {
    const report = await verifyAfter((t) => t.remove(3));
    expect(found(report)).toEqual([
      ...(dense ? [{ kind: 'missing-positions', streamId: undefined, version: undefined, position: 3 }] : []),
      { kind: 'missing-versions', streamId: 'order-1', version: 2, position: 6 },
    ]);
  });

  it('finds the newest event of a stream deleted: from the seal, even without its key', async () => {
    const report = await verifyAfter((t) => t.remove(7), { digest: false, keys: false });
    expect(found(report)).toEqual([
      ...(dense ? [{ kind: 'missing-positions', streamId: undefined, version: undefined, position: 7 }] : []),
      { kind: 'missing-events', streamId: 'order-3', version: 2, position: 7 },
    ]);
    expect(report.seals).toMatchObject({ verified: 0, unverified: 1 });
  });

  it('finds the newest events of the log deleted: against the digest, and only there', async () => {
    const report = await verifyAfter((t) => t.remove(12, 13));
    expect(found(report)).toEqual([
      { kind: 'missing-events', streamId: 'order-4', version: 1, position: 12 },
      { kind: 'missing-events', streamId: 'order-2', version: 4, position: 13 },
      // order-4 had only that event: its stream is left begun and empty.
      { kind: 'empty-stream', streamId: 'order-4', version: 1, position: undefined },
    ]);
    expect(report.problems[1]?.message).toBe(
      'version 4 is missing at or before position 13; the digest recorded version 4 at position 13: deleted',
    );
    // Past the last seal, nothing but a digest kept elsewhere remembers order-2's newest event.
    const sealOnly = await verifyAfter((t) => t.remove(12, 13), { digest: false });
    expect(found(sealOnly)).toEqual([{ kind: 'empty-stream', streamId: 'order-4', version: 1, position: undefined }]);
  });

  it('finds two events of one stream swapped', async () => {
    const report = await verifyAfter((t) => t.swap(3, 6));
    expect(found(report)).toEqual([
      { kind: 'missing-versions', streamId: 'order-1', version: 2, position: 3 },
      { kind: 'out-of-order', streamId: 'order-1', version: 2, position: 6 },
    ]);
  });

  it('finds two events of different streams swapped, which every chain survives, and narrows it down', async () => {
    const report = await verifyAfter((t) => t.swap(2, 4));
    expect(found(report)).toEqual([{ kind: 'root-mismatch', streamId: undefined, version: undefined, position: 1 }]);
    expect(report.problems[0]?.message).toContain('positions 1–8 hold other events or the same in another order');
  });

  it('finds a whole stream rewritten with consistent hashes: against the seal (and the digest)', async () => {
    const rewrite = async (t: Tables) => {
      let previous = GENESIS_HASH;
      for (const [version, position] of [
        [1, 4],
        [2, 7],
      ] as const) {
        const data = flip(await t.get('data', position), 'step', 'STEP');
        const digestOf = contentDigestOfJson(
          `order-3.${version}`,
          'order-3',
          version === 1 ? 'Placed' : 'Updated',
          1,
          data,
          await t.get('metadata', position),
        );
        previous = chainLink(previous, version, await t.get('recorded_at', position), digestOf);
        await t.set('data', position, data);
        await t.set('digest', position, digestOf);
        await t.set('hash', position, previous);
      }
    };
    const report = await verifyAfter(rewrite);
    expect(found(report)).toEqual([{ kind: 'head-mismatch', streamId: 'order-3', version: 2, position: 7 }]);
    expect(report.problems[0]?.message).toContain('the stream was rewritten');
    // Without the seal's key or a digest, the rewritten chain is consistent: only the (unauthenticated) seal remembers.
    const unkeyed = await verifyAfter(rewrite, { digest: false, keys: false });
    expect(found(unkeyed)).toEqual([{ kind: 'head-mismatch', streamId: 'order-3', version: 2, position: 7 }]);
  });

  it('finds a seal that was edited: its signature no longer holds', async () => {
    const report = await verifyAfter(async (t) => t.set('data', 10, flip(await t.get('data', 10), '"size":9', '"size":8')));
    expect(found(report).map((p) => p.kind)).toEqual(['bad-seal', 'hash-mismatch']);
    expect(found(report)[0]).toMatchObject({ streamId: '$rewind-seals', version: 1, position: 10 });
  });
});
