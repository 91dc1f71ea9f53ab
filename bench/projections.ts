import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { defineProjection } from '../src/projections/definition.js';
import { openProjections } from '../src/projections/projections.js';
import { openStore } from '../src/store/open.js';
import type { EventStore } from '../src/store/types.js';
import { measure, note, quantile, record } from './lib.js';

const SECTION = 'projection catch-up';

/** A per-run summary, the shape of the built-in `runs` read model: one document per stream, updated by every event. */
const summary = defineProjection<{ events: number; tools: number; last: string }>({
  name: 'bench-summary',
  version: 1,
  key: (e) => e.streamId,
  evolve: (doc, e) => ({
    events: (doc?.events ?? 0) + 1,
    tools: (doc?.tools ?? 0) + (e.type === 'ToolCalled' ? 1 : 0),
    last: e.type,
  }),
});

/**
 * Catch-up rate of an asynchronous projection over N events, next to a plain
 * readAll of the same events (the limit: the projection must read them too).
 * N = 400,000 × scale on SQLite (under a minute at scale 1, writing included;
 * 1,000,000 at --scale 2.5), 100,000 × scale on PostgreSQL when DATABASE_URL is
 * set or a URL is given. Then a rebuild under a steady append load, over
 * 1,000,000 × scale events on SQLite (the log topped up) and 100,000 × scale
 * on PostgreSQL.
 */
export async function benchProjections(scale: number, databaseUrl?: string | (() => Promise<string>)): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-bench-proj-'));
  try {
    const n = 400_000 * scale;
    const store = await openStore(`sqlite:${join(dir, 'rewind.db')}`, { durability: 'normal' });
    await run(store, 'sqlite', n);
    await rebuildUnderLoad(store, 'sqlite', 1_000_000 * scale);
    await store.close();
    const durable = await openStore(`sqlite:${join(dir, 'inline.db')}`);
    await inlineCost(durable, 'sqlite', 20_000 * scale, 100);
    await durable.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const url = typeof databaseUrl === 'function' ? await databaseUrl() : (databaseUrl ?? process.env.DATABASE_URL);
  if (!url) return;
  const schema = `bench_proj_${Date.now().toString(36)}`;
  const store = await openStore(url, { schema, poolSize: 8 });
  try {
    await run(store, 'postgres', 100_000 * scale);
    await rebuildUnderLoad(store, 'postgres', 100_000 * scale);
    await inlineCost(store, 'postgres', 2_000 * scale, 16);
  } finally {
    await store.close();
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    await pool.end();
  }
}

async function run(store: EventStore, backend: string, n: number): Promise<void> {
  process.stderr.write(`  ${backend}: writing ${n.toLocaleString('en-US')} events…\n`);
  await fill(store, n);
  const readAll = `${backend}: readAll of ${n.toLocaleString('en-US')} events`;
  const readEverything = async () => {
    let from = 0;
    for (;;) {
      const page = await store.readAll({ from, limit: 5000 });
      if (page.length === 0) break;
      from = (page.at(-1)?.position ?? from) + 1;
    }
  };
  // Warmed up: the projections read a log the first pass already brought into the cache.
  await measure(SECTION, readAll, n, readEverything, { unit: 'events/s', warmup: readEverything });
  for (const batchSize of [1000, 5000]) {
    const projections = await openProjections(store, [{ ...summary, name: `bench-summary-${batchSize}` }], { batchSize });
    await measure(SECTION, `${backend}: async projection catch-up, batches of ${batchSize}`, n, () => projections.catchUp(), {
      unit: 'events/s',
      baseline: readAll,
    });
    const [status] = await projections.status();
    if (status?.lagEvents !== 0) throw new Error(`the projection did not catch up: ${JSON.stringify(status)}`);
    await projections.close();
  }
}

const APPEND_EVERY_MS = 5;

/**
 * A rebuild from position 0 over a log of `n` events (topped up to n) while
 * this process keeps appending one event every 5 ms, as a server would: the
 * rebuild's time, and the latency of those appends, each from the moment it
 * was due (so a stalled event loop counts), next to the same load with no
 * rebuild running.
 */
async function rebuildUnderLoad(store: EventStore, backend: string, n: number): Promise<void> {
  const head = await store.headPosition();
  if (head < n) {
    process.stderr.write(`  ${backend}: writing ${(n - head).toLocaleString('en-US')} more events…\n`);
    await fill(store, n - head);
  }
  const idle = await steadyAppends(store, async () => {
    await new Promise((resolve) => setTimeout(resolve, 3000));
  });
  const projections = await openProjections(store, [{ ...summary, name: 'bench-rebuild' }]);
  let seconds = 0;
  const during = await steadyAppends(store, async () => {
    const start = process.hrtime.bigint();
    await projections.rebuild('bench-rebuild');
    seconds = Number(process.hrtime.bigint() - start) / 1e9;
  });
  const [status] = await projections.status();
  if (status?.state !== 'ok' || status.lagEvents > 10) throw new Error(`the rebuild did not finish: ${JSON.stringify(status)}`);
  await projections.close();
  const total = n + during.count;
  record({
    section: SECTION,
    name: `${backend}: rebuild of ${n.toLocaleString('en-US')} events, appending every ${APPEND_EVERY_MS} ms meanwhile`,
    ops: total,
    seconds,
    unit: 'events/s',
    baseline: `${backend}: async projection catch-up, batches of 1000`,
  });
  for (const [label, at] of [
    ['median', 0.5],
    ['p99', 0.99],
    ['max', 1],
  ] as const) {
    const idleName = `${backend}: append every ${APPEND_EVERY_MS} ms, no rebuild, ${label}`;
    record({ section: SECTION, name: idleName, ops: 1, seconds: quantile(idle.latencies, at) / 1000, unit: 'ms', kind: 'latency' });
    record({
      section: SECTION,
      name: `${backend}: append every ${APPEND_EVERY_MS} ms during the rebuild, ${label}`,
      ops: 1,
      seconds: quantile(during.latencies, at) / 1000,
      unit: 'ms',
      kind: 'latency',
      baseline: idleName,
    });
  }
  note(SECTION, `${backend}: ${during.count.toLocaleString('en-US')} appends during the rebuild of ${n.toLocaleString('en-US')} events`);
}

/**
 * Appends one event every APPEND_EVERY_MS while `during` runs. Open loop: each
 * append is due at its slot and timed from then, whether or not the ones before
 * it were answered, so time the event loop was held counts as latency.
 */
async function steadyAppends(store: EventStore, during: () => Promise<void>): Promise<{ count: number; latencies: number[] }> {
  const latencies: number[] = [];
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  let next = 0;
  const issue = () => {
    const now = performance.now();
    for (; t0 + next * APPEND_EVERY_MS <= now; next++) {
      const due = t0 + next * APPEND_EVERY_MS;
      pending.push(
        store
          .append(`load-${next % 100}`, [{ type: 'ToolCalled', data: { tool: 'search', n: next } }])
          .then(() => void latencies.push(performance.now() - due)),
      );
    }
  };
  const timer = setInterval(issue, 1);
  try {
    await during();
  } finally {
    clearInterval(timer);
  }
  await Promise.all(pending);
  return { count: pending.length, latencies: latencies.sort((a, b) => a - b) };
}

/**
 * What an inline projection adds to appends, `callers` concurrent callers, with
 * and without one. On PostgreSQL appends then take turns (see INLINE_TURNS in
 * store/postgres/schema.ts), so this is the price of inline there.
 */
async function inlineCost(store: EventStore, backend: string, n: number, callers: number): Promise<void> {
  const payload = { tool: 'search', query: 'hotels in Lisbon' };
  const appendAll = async (prefix: string) => {
    for (let i = 0; i < n; i += callers) {
      await Promise.all(
        Array.from({ length: callers }, (_, j) => store.append(`${prefix}-${(i + j) % 1000}`, [{ type: 'ToolCalled', data: payload }])),
      );
    }
  };
  const plain = `${backend}: append, ${callers} concurrent callers, no projection`;
  await measure(SECTION, plain, n, () => appendAll('plain'));
  const projections = await openProjections(store, [{ ...summary, name: 'bench-inline', mode: 'inline' }]);
  // Caught up first (the catch-up rate is measured above): what an append costs once the projection follows the log.
  await projections.catchUp();
  await measure(SECTION, `${backend}: append, ${callers} concurrent callers, one inline projection`, n, () => appendAll('inline'), {
    baseline: plain,
  });
  await projections.close();
}

/** 1,000 runs of agent-like events, written 100 streams × 10 events per commit (appendMany) so filling stays quick. */
async function fill(store: EventStore, n: number): Promise<void> {
  const payload = { tool: 'search', query: 'hotels in Lisbon', results: Array.from({ length: 5 }, (_, i) => ({ id: i, score: i / 10 })) };
  const perAppend = 10;
  for (let i = 0; i < n; i += perAppend * 100) {
    const appends = [];
    for (let j = i; j < Math.min(n, i + perAppend * 100); j += perAppend) {
      const count = Math.min(perAppend, n - j);
      appends.push({
        streamId: `run-${(j / perAppend) % 1000}`,
        events: Array.from({ length: count }, (_, k) => ({ type: k % 2 ? 'ToolCalled' : 'ModelCalled', data: payload })),
      });
    }
    await store.appendMany(appends);
  }
}

// `tsx bench/projections.ts [scale]` runs this section alone.
if (import.meta.url === `file://${process.argv[1]}`) {
  const { printTable } = await import('./lib.js');
  await benchProjections(Number(process.argv[2] ?? 1) || 1);
  printTable();
}
