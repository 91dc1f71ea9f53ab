import pg from 'pg';
import { openStore } from '../src/store/open.js';
import { measure } from './lib.js';

const SECTION = 'postgres append/read';

/**
 * Rewind's PostgreSQL appends and reads against raw `pg` doing the same
 * physical work: a one-row INSERT per commit into a table of the same shape.
 */
export async function benchPostgresStore(url: string, scale: number): Promise<void> {
  const n = 1_000 * scale;
  const writers = 16;
  const payload = { tool: 'search', query: 'hotels in Lisbon', results: Array.from({ length: 5 }, (_, i) => ({ id: i, score: i / 10 })) };
  const schema = `bench_${Date.now().toString(36)}`;
  const pool = new pg.Pool({ connectionString: url, max: writers });
  await pool.query(`CREATE SCHEMA ${schema}`);
  await pool.query(`CREATE TABLE ${schema}.raw (position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id text UNIQUE, stream_id text,
    version int, type text, data json, metadata json, recorded_at text, hash text, UNIQUE (stream_id, version))`);
  const insert = (stream: string, version: number, id: string) =>
    pool.query(`INSERT INTO ${schema}.raw (id, stream_id, version, type, data, metadata, recorded_at, hash) VALUES ($1,$2,$3,'ToolCalled',$4,'{}',$5,$6)`, [
      id, stream, version, JSON.stringify(payload), new Date().toISOString(), 'x'.repeat(64),
    ]);
  const store = await openStore(url, { schema, poolSize: writers });
  try {
    await measure(SECTION, 'raw pg: 1 insert per commit', n, async () => {
      for (let i = 0; i < n; i++) await insert('raw-seq', i + 1, `s${i}`);
    });
    await measure(SECTION, 'rewind append, awaited one by one', n, async () => {
      for (let i = 0; i < n; i++) await store.append('seq', [{ type: 'ToolCalled', data: payload }]);
    }, { baseline: 'raw pg: 1 insert per commit' });

    const perWriter = Math.ceil(n / writers);
    await measure(SECTION, `raw pg: ${writers} concurrent writers`, perWriter * writers, async () => {
      await Promise.all(Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; i < perWriter; i++) await insert(`raw-w${w}`, i + 1, `w${w}-${i}`);
      }));
    });
    await measure(SECTION, `rewind append, ${writers} concurrent writers`, perWriter * writers, async () => {
      await Promise.all(Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; i < perWriter; i++) await store.append(`w${w}`, [{ type: 'ToolCalled', data: payload }], { expectedVersion: i });
      }));
    }, { baseline: `raw pg: ${writers} concurrent writers` });

    await measure(SECTION, 'raw select of a stream (pg parses JSON)', n, async () => {
      await pool.query(`SELECT * FROM ${schema}.raw WHERE stream_id = 'raw-seq' ORDER BY version`);
    }, { unit: 'events/s' });
    await measure(SECTION, 'rewind read of a stream', n, async () => {
      await store.read('seq', { limit: n });
    }, { unit: 'events/s', baseline: 'raw select of a stream (pg parses JSON)' });
  } finally {
    await store.close();
    await pool.query(`DROP SCHEMA ${schema} CASCADE`);
    await pool.end();
  }
}
