import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventEnvelope } from '../../src/events/envelope.js';
import { ConcurrencyError } from '../../src/events/errors.js';
import { chainLink, GENESIS_HASH, verifyChain } from '../../src/events/hash.js';
import { EventRegistry } from '../../src/events/registry.js';
import { openStore } from '../../src/store/open.js';
import { migrations } from '../../src/store/postgres/schema.js';
import { prepareAppends } from '../../src/store/prepare.js';
import type { EventStore } from '../../src/store/types.js';
import { databaseUrl, openTestPostgresStore, uniqueSchema } from '../support/postgres.js';

const opened: Array<EventStore | pg.Client> = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((x) => (x instanceof pg.Client ? x.end() : x.close())));
});

async function open(schema: string, poolSize?: number): Promise<EventStore> {
  const store = await openTestPostgresStore({ schema, poolSize });
  opened.push(store);
  return store;
}

async function rawClient(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: databaseUrl() });
  await client.connect();
  opened.push(client);
  return client;
}

/** Reads everything a subscriber should eventually have seen. */
async function readWholeLog(store: EventStore): Promise<EventEnvelope[]> {
  const all: EventEnvelope[] = [];
  for (let from = 0; ; ) {
    const page = await store.readAll({ from, limit: 5000 });
    all.push(...page);
    if (page.length < 5000) return all;
    from = (page.at(-1) as EventEnvelope).position + 1;
  }
}

/** Subscribes from 0 in the background; a subscription that fails makes `seen` stop growing, and the failure is kept in `errors`. */
function collect(store: EventStore, signal: AbortSignal, batchSize?: number, errors: unknown[] = []): EventEnvelope[] {
  const seen: EventEnvelope[] = [];
  (async () => {
    for await (const event of store.subscribe({ from: 0, signal, batchSize })) seen.push(event);
  })().catch((error) => errors.push(error));
  return seen;
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(20);
  }
}

describe('PostgreSQL: the global-order gap', () => {
  it('delivers every committed event exactly once, in position order, while commits land out of order', async () => {
    const schema = uniqueSchema();
    // 16 writer connections over two pools, plus a reader on its own pool.
    const writers = [await open(schema, 8), await open(schema, 8)];
    const reader = await open(schema, 2);
    const stop = new AbortController();
    const failures: unknown[] = [];
    const seenBig = collect(reader, stop.signal, undefined, failures);
    const seenSmall = collect(reader, stop.signal, 7, failures);

    const acked = new Map<string, number>();
    let appends = 0;
    let ackedUpTo = 0;
    const runFor = 3_000;
    const started = Date.now();

    const writer = async (w: number) => {
      const store = writers[w % 2] as EventStore;
      for (let i = 0; Date.now() - started < runFor; i++) {
        const streamId = i % 3 === 0 ? `own-${w}` : `shared-${i % 4}`;
        const count = 1 + (i % 5 === 0 ? 2 : 0);
        const events = Array.from({ length: count }, (_, k) => ({ type: 'tick', data: { w, i, k } }));
        const result = await store.append(streamId, events);
        appends++;
        for (const e of result.events) acked.set(e.id, e.position);
        ackedUpTo = Math.max(ackedUpTo, result.position);
      }
    };

    // Holds a transaction open across other commits: its positions are lower
    // than events committed (and acknowledged) while it sleeps.
    const overtaken: Array<{ held: number; overtakenBy: number }> = [];
    const holder = async (h: number) => {
      const client = await rawClient();
      const registry = new EventRegistry();
      for (let round = 0; Date.now() - started < runFor - 600; round++) {
        const [prepared] = prepareAppends([{ streamId: `held-${h}`, events: [{ type: 'held', data: { h, round } }] }], {
          registry,
          now: () => new Date().toISOString(),
        });
        const batch = JSON.stringify([
          [
            {
              streamId: prepared?.streamId,
              expectedVersion: 'any',
              events: prepared?.events.map((e) => ({ ...e, data: e.dataJson, metadata: e.metadataJson })),
            },
          ],
        ]);
        await client.query('BEGIN');
        const { rows } = await client.query(`SELECT r_id, r_position FROM "${schema}".append_calls($1::jsonb)`, [batch]);
        await sleep(200 + 150 * h);
        const before = ackedUpTo;
        await client.query('COMMIT');
        const held = Number(rows[0].r_position);
        acked.set(rows[0].r_id, held);
        if (before > held) overtaken.push({ held, overtakenBy: before });
        await sleep(50);
      }
    };

    await Promise.all([...Array.from({ length: 16 }, (_, w) => writer(w)), holder(0), holder(1)]);
    const elapsed = Date.now() - started;

    const all = await readWholeLog(reader);
    // On timeout the assertions below say what went missing.
    await until(() => seenBig.length >= all.length && seenSmall.length >= all.length, 10_000).catch(() => {});
    await sleep(200); // anything extra (a repeat) would show up now
    stop.abort();

    console.log(
      `gap test: ${appends} appends by 16 writers in ${elapsed} ms (~${Math.round((appends / elapsed) * 1000)}/s), ` +
        `${all.length} events, ${overtaken.length} held transactions overtaken by later commits`,
    );
    expect(failures).toEqual([]);
    expect(overtaken.length).toBeGreaterThan(0);
    expect(acked.size).toBe(all.length);
    for (const seen of [seenBig, seenSmall]) {
      const missing = all.filter((e) => !seen.some((s) => s.id === e.id)).map((e) => e.position);
      expect(missing, 'positions the subscriber skipped').toEqual([]);
      expect(seen.length).toBe(all.length);
      for (let i = 1; i < seen.length; i++)
        expect((seen[i] as EventEnvelope).position).toBeGreaterThan((seen[i - 1] as EventEnvelope).position);
      expect(seen.map((e) => e.id)).toEqual(all.map((e) => e.id));
    }
    for (const [id, position] of acked) expect(all.find((e) => e.id === id)?.position).toBe(position);
  }, 60_000);

  it('never lets a reader pass an in-flight transaction, even one that drew a lower position', async () => {
    const schema = uniqueSchema();
    const store = await open(schema);
    await store.append('before', [{ type: 't', data: 1 }]);
    const client = await rawClient();
    const registry = new EventRegistry();
    const [prepared] = prepareAppends([{ streamId: 'slow', events: [{ type: 't', data: 2 }] }], {
      registry,
      now: () => new Date().toISOString(),
    });
    const batch = JSON.stringify([
      [
        {
          streamId: 'slow',
          expectedVersion: 'any',
          events: prepared?.events.map((e) => ({ ...e, data: e.dataJson, metadata: e.metadataJson })),
        },
      ],
    ]);
    await client.query('BEGIN');
    await client.query(`SELECT * FROM "${schema}".append_calls($1::jsonb)`, [batch]);
    const later = await store.append('fast', [{ type: 't', data: 3 }]);

    // Committed, but behind the open transaction: not yet readable.
    expect((await store.readAll()).map((e) => e.streamId)).toEqual(['before']);
    expect(await store.headPosition()).toBe(1);
    expect(await store.read('fast')).toHaveLength(1);

    await client.query('COMMIT');
    expect((await store.readAll()).map((e) => e.streamId)).toEqual(['before', 'slow', 'fast']);
    expect(await store.headPosition()).toBe(later.position);
  });

  it('refuses to run append_calls where it could not keep the order', async () => {
    const schema = uniqueSchema();
    const store = await open(schema);
    await store.checkpoint('c', 1);
    const client = await rawClient();
    await client.query('BEGIN');
    await client.query(`UPDATE "${schema}".checkpoints SET position = 2`);
    await expect(client.query(`SELECT * FROM "${schema}".append_calls('[]'::jsonb)`)).rejects.toMatchObject({ code: 'RW003' });
    await client.query('ROLLBACK');
  });
});

describe('PostgreSQL: the cost of an append', () => {
  // Counted inside the appending transaction, so nothing else running on the server can touch the figures.
  async function scansOfEvents(client: pg.Client, schema: string, batch: string): Promise<{ seq: number; idx: number }> {
    await client.query('BEGIN');
    try {
      await client.query(`SELECT * FROM "${schema}".append_calls($1::jsonb)`, [batch]);
      const { rows } = await client.query<{ seq: string; idx: string }>(
        `SELECT seq_scan AS seq, coalesce(idx_scan, 0) AS idx FROM pg_stat_xact_user_tables WHERE relid = $1::regclass`,
        [`"${schema}".events`],
      );
      return { seq: Number(rows[0]?.seq), idx: Number(rows[0]?.idx) };
    } finally {
      await client.query('COMMIT');
    }
  }

  it('never scans the events table, even where the planner holds it to be tiny', async () => {
    const schema = uniqueSchema();
    const store = await open(schema);
    // A few hundred rows and no statistics: the plans that scanned were chosen for exactly this.
    for (let i = 0; i < 300; i += 50) {
      await store.appendMany(
        Array.from({ length: 50 }, (_, k) => ({ streamId: `s${i + k}`, events: [{ type: 't', data: { i: i + k } }] })),
      );
    }
    const client = await rawClient();
    const batchOf = (streamId: string, ids: boolean, events: { id?: string; type: string; data: unknown }[]) => {
      const [prepared] = prepareAppends([{ streamId, events }], { registry: new EventRegistry(), now: () => new Date().toISOString() });
      return JSON.stringify([
        [
          {
            streamId,
            expectedVersion: 'any',
            idsGiven: ids,
            events: prepared?.events.map((e) => ({ ...e, data: e.dataJson, metadata: e.metadataJson })),
          },
        ],
      ]);
    };
    expect((await scansOfEvents(client, schema, batchOf('fresh', false, [{ type: 't', data: 1 }]))).seq).toBe(0);
    const chosen = batchOf('chosen', true, [
      { id: 'c-1', type: 't', data: 1 },
      { id: 'c-2', type: 't', data: 2 },
    ]);
    // The ids and the stream's head are found by index (the planner may probe the indexes too).
    const scans = await scansOfEvents(client, schema, chosen);
    expect(scans.seq).toBe(0);
    expect(scans.idx).toBeGreaterThanOrEqual(3);
    // A retry finds both stored and returns them, by index too.
    expect((await scansOfEvents(client, schema, chosen)).seq).toBe(0);
    expect((await store.read('chosen')).map((e) => e.id)).toEqual(['c-1', 'c-2']);
  });
});

describe('PostgreSQL: writers', () => {
  it('lets exactly one of 16 writers win each version; the others learn the actual version', async () => {
    const store = await open(uniqueSchema(), 16);
    for (let round = 0; round < 10; round++) {
      const expected = round === 0 ? 'no_stream' : round;
      const outcomes = await Promise.allSettled(
        Array.from({ length: 16 }, (_, w) => store.append('contended', [{ type: 't', data: { round, w } }], { expectedVersion: expected })),
      );
      const won = outcomes.filter((o) => o.status === 'fulfilled');
      const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(15);
      for (const { reason } of lost) {
        expect(reason).toBeInstanceOf(ConcurrencyError);
        expect(reason).toMatchObject({ streamId: 'contended', expected, actual: round + 1 });
      }
    }
    expect(await store.streamVersion('contended')).toBe(10);
  });

  it('computes the same hash chain as JavaScript, byte for byte', async () => {
    const store = await open(uniqueSchema());
    const memory = await openStore('memory:');
    const events = [
      { id: 'e1', type: 'greeting', data: { text: 'héllo 👋 \u2028 "quoted" \\ back', n: 1.5e-7 }, recordedAt: '2026-01-31T12:00:00Z' },
      {
        id: 'e2',
        type: 'greeting',
        data: [null, true, { b: 1, a: 2 }],
        recordedAt: '2026-01-31T12:00:00.123456789Z',
        metadata: { actor: 'ägent' },
      },
      { id: 'e3', type: 'x', data: null, schemaVersion: 3 },
    ];
    const written = await store.append('chain', events);
    const reference = await memory.append('chain', events.slice(0, 2));
    await memory.close();

    expect(written.events.slice(0, 2).map((e) => e.hash)).toEqual(reference.events.map((e) => e.hash));
    const stored = await store.read('chain');
    const check = verifyChain('chain', stored, (await store.listStreams())[0]?.head);
    expect(check).toMatchObject({ ok: true, events: 3 });
    const [first] = stored as [EventEnvelope];
    expect(first.hash).not.toBe(chainLink(GENESIS_HASH, 1, '2026-01-31T12:00:00.000Z', '0'.repeat(64)));
    expect(await store.verify()).toMatchObject({ ok: true, events: 3 });
  });

  it('returns the original result for a repeated append', async () => {
    const store = await open(uniqueSchema());
    const events = [
      { id: 'a', type: 't', data: 1 },
      { id: 'b', type: 't', data: 2 },
    ];
    const first = await store.append('s', events, { expectedVersion: 'no_stream' });
    await store.append('other', [{ type: 't', data: 3 }]);
    const again = await store.append('s', events, { expectedVersion: 'no_stream' });
    expect(again).toEqual(first);
    expect(await store.headPosition()).toBe(3);
  });
});

describe('PostgreSQL: live delivery', () => {
  it('wakes a subscriber in another process (pool) through LISTEN/NOTIFY', async () => {
    const schema = uniqueSchema();
    const [writer, reader] = [await open(schema), await open(schema)];
    const stop = new AbortController();
    const seen = collect(reader, stop.signal);
    const latencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      await sleep(100);
      const t = Date.now();
      await writer.append('s', [{ type: 't', data: i }]);
      await until(() => seen.length === i + 1, 5_000);
      latencies.push(Date.now() - t);
    }
    stop.abort();
    latencies.sort((a, b) => a - b);
    // The poll runs every 750 ms; a median this low means NOTIFY did the waking.
    expect(latencies[2]).toBeLessThan(150);
  });

  it('announces the last append of a burst too, though a burst shares its NOTIFYs', async () => {
    const schema = uniqueSchema();
    const [writer, reader] = [await open(schema), await open(schema)];
    const stop = new AbortController();
    const seen = collect(reader, stop.signal);
    const latencies: number[] = [];
    for (let round = 0; round < 3; round++) {
      await sleep(100);
      // Awaited one by one, so the later appends land while the first one's NOTIFY holds the others back.
      for (let i = 0; i < 20; i++) await writer.append('s', [{ type: 't', data: i }]);
      const t = Date.now();
      await until(() => seen.length === 20 * (round + 1), 5_000);
      latencies.push(Date.now() - t);
    }
    stop.abort();
    latencies.sort((a, b) => a - b);
    // The poll runs every 750 ms: the trailing NOTIFY did the waking.
    expect(latencies[1]).toBeLessThan(150);
  });

  it('listens again after losing its connection', async () => {
    const schema = uniqueSchema();
    const [writer, reader] = [await open(schema), await open(schema)];
    const stop = new AbortController();
    const seen = collect(reader, stop.signal);
    const admin = await rawClient();
    const listeners = `SELECT pid FROM pg_stat_activity WHERE application_name = 'rewind listener ${schema}'`;
    const killed = await admin.query(`SELECT pg_terminate_backend(pid) FROM (${listeners}) l`);
    expect(killed.rowCount).toBeGreaterThan(0);

    // Still delivered while the listeners are down (the poll), and fast again once they are back.
    await writer.append('s', [{ type: 't', data: 0 }]);
    await until(() => seen.length === 1, 5_000);
    await until(async () => ((await admin.query(listeners)).rowCount ?? 0) >= 2, 5_000);
    await sleep(100);
    const t = Date.now();
    await writer.append('s', [{ type: 't', data: 1 }]);
    await until(() => seen.length === 2, 5_000);
    expect(Date.now() - t).toBeLessThan(300);
    stop.abort();
  });
});

describe('PostgreSQL: schema and ids', () => {
  it('lets many processes create the same schema at once', async () => {
    const schema = uniqueSchema();
    const stores = await Promise.all(Array.from({ length: 6 }, () => open(schema, 1)));
    await Promise.all(stores.map((s, i) => s.append(`s-${i}`, [{ type: 't', data: i }])));
    expect(await (stores[0] as EventStore).headPosition()).toBe(6);
  });

  it('gives an id raced into two streams to one of them and a conflict to the rest', async () => {
    const store = await open(uniqueSchema(), 8);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => store.append(`s-${i}`, [{ id: 'same', type: 't', data: 1 }])),
    );
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toMatchObject({ code: 'EVENT_ID_CONFLICT', eventId: 'same' });
  });

  it('moves a schema of migration 6 to 7: heads come from the newest events, and the chains go on', async () => {
    const schema = uniqueSchema();
    const client = await rawClient();
    const s = `"${schema}"`;
    // The tables as the builds before migration 7 left them, with rows as their append function wrote
    // them: each stream's head copied into streams.
    await client.query(`CREATE SCHEMA ${s}`);
    await client.query(`CREATE TABLE ${s}.migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
    for (const [i, sql] of migrations(s, schema).slice(0, 6).entries()) {
      await client.query(sql);
      await client.query(`INSERT INTO ${s}.migrations (version) VALUES ($1)`, [i + 1]);
    }
    const registry = new EventRegistry();
    for (const [streamId, count] of [
      ['a', 3],
      ['b', 1],
    ] as const) {
      const [prepared] = prepareAppends([{ streamId, events: Array.from({ length: count }, (_, i) => ({ type: 't', data: i })) }], {
        registry,
        now: () => new Date().toISOString(),
      });
      let head = GENESIS_HASH;
      let position = 0;
      for (const [i, e] of (prepared?.events ?? []).entries()) {
        head = chainLink(head, i + 1, e.recordedAt, e.digest);
        const { rows } = await client.query(
          `INSERT INTO ${s}.events (id, stream_id, version, type, schema_version, data, metadata, recorded_at, digest, hash, tx_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, pg_current_xact_id()) RETURNING position`,
          [e.id, streamId, i + 1, e.type, e.schemaVersion, e.dataJson, e.metadataJson, e.recordedAt, e.digest, head],
        );
        position = Number(rows[0].position);
      }
      await client.query(`INSERT INTO ${s}.streams (stream_id, version, head, position) VALUES ($1, $2, $3, $4)`, [
        streamId,
        count,
        head,
        position,
      ]);
    }

    const store = await open(schema);
    const { rows } = await client.query(
      `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'streams'`,
      [schema],
    );
    expect(rows.map((r) => r.column_name)).toEqual(['stream_id']);
    const before = await store.listStreams();
    expect(before.map((x) => [x.streamId, x.version])).toEqual([
      ['a', 3],
      ['b', 1],
    ]);
    expect(await store.streamVersion('a')).toBe(3);
    await store.append('a', [{ type: 't', data: 3 }], { expectedVersion: 3 });
    await store.append('c', [{ type: 't', data: 0 }], { expectedVersion: 'no_stream' });
    const a = await store.read('a');
    expect(verifyChain('a', a, (await store.listStreams({ prefix: 'a' }))[0]?.head)).toMatchObject({ ok: true, events: 4 });
    expect((await store.listStreams()).map((x) => [x.streamId, x.version, x.head, x.position])).toEqual([
      ['a', 4, (a.at(-1) as EventEnvelope).hash, (a.at(-1) as EventEnvelope).position],
      ['b', 1, (before[1] as { head: string }).head, (before[1] as { position: number }).position],
      ['c', 1, expect.any(String), 6],
    ]);
  });

  it('refuses a schema that a newer build has migrated, and changes nothing in it', async () => {
    const schema = uniqueSchema();
    const store = await open(schema);
    await store.append('s', [{ type: 't', data: 1 }]);
    const client = await rawClient();
    await client.query(`INSERT INTO "${schema}".migrations (version) VALUES (99)`);
    await expect(openTestPostgresStore({ schema })).rejects.toMatchObject({
      code: 'STORE_CONFIG',
      message: expect.stringContaining('newer Rewind (migration 99'),
    });
    expect(await store.read('s')).toHaveLength(1);
  });

  it('refuses a schema name that is not a plain identifier', async () => {
    await expect(openTestPostgresStore({ schema: 'x"; drop table y; --' })).rejects.toMatchObject({ code: 'STORE_CONFIG' });
  });
});
