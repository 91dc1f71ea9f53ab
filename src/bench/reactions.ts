import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRuntime, defineReaction, defineWorkflow, openRunQueue, type Reaction } from '../runtime/index.js';
import { openStore } from '../store/open.js';
import type { EventStore } from '../store/types.js';
import { fmt1, measure, note, quantile, recordLatency } from './lib.js';

const SECTION = 'reactions';

const job = defineWorkflow<{ n: number }, null, { type: 'None'; data: null }, number>({
  name: 'bench-react-job',
  initialState: null,
  apply: (s) => s,
  run: async (_ctx, input) => input.n,
});

interface Backend {
  label: 'sqlite' | 'postgres';
  /** Two handles on one log: the application's, and the reacting process's. */
  open: () => Promise<EventStore>;
}

/**
 * Issue 32, reactions: how long from an event's append until a reaction acts
 * on it (the reaction in its own store connection, as another process would
 * be), and how many events one process handles a second when a backlog waits,
 * against the loop users write by hand (subscribe, start under a derived id,
 * store the position after each event).
 */
export async function benchReactions(scale: number, databaseUrl: (() => Promise<string>) | undefined): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-bench-react-'));
  const backends: Backend[] = [{ label: 'sqlite', open: () => openStore(`sqlite:${join(dir, 'react.db')}`) }];
  const schemas: string[] = [];
  let base: string | undefined;
  try {
    if (databaseUrl) {
      base = await databaseUrl();
      const schema = `bench_react_${Date.now().toString(36)}`;
      schemas.push(schema);
      backends.push({ label: 'postgres', open: () => openStore(base as string, { schema }) });
    }
    for (const b of backends) await lag(b, Math.max(50, Math.round(300 * scale)));
    note(
      SECTION,
      'lag: the bench appends one matching event every 20 ms through one store handle; a runtime on a second handle runs a reaction ' +
        'whose act starts a run (detached, its id derived from the event). Timed from the append returning until act is called, and ' +
        "until the run's RunStarted is committed (the same clock: one process). SQLite learns of another connection's appends from the " +
        "file's change counter (read every 20 ms), PostgreSQL by NOTIFY",
    );
    for (const b of backends) await throughput(b, Math.max(500, Math.round(3_000 * scale)));
    note(
      SECTION,
      'throughput: a backlog of events, then one process handles them all: the reaction starts one run per event under a run queue ' +
        '(the worker setting: runs are left to the workers), its position stored after each page of 200; against the loop written by ' +
        'hand (store.subscribe with a consumer, runtime.start under a derived id, store.checkpoint after each event), which is exactly ' +
        'once in effect too but acts on one event at a time',
    );
  } finally {
    if (base && schemas.length > 0) {
      const { default: pg } = await import('pg');
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      for (const s of schemas) await c.query(`DROP SCHEMA ${s} CASCADE`).catch(() => {});
      await c.end();
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

async function lag(b: Backend, events: number): Promise<void> {
  const app = await b.open();
  const other = await b.open();
  const appendedAt = new Map<string, number>();
  const actedAt = new Map<string, number>();
  const stream = `lag-${Date.now().toString(36)}`;
  const reaction = defineReaction({
    name: `bench-lag-${stream}`,
    from: 'now',
    on: { types: ['Ping'], streamPrefix: stream },
    act: (e) => {
      actedAt.set(e.id, performance.now());
      return { start: job, input: { n: e.version } };
    },
  });
  const runtime = createRuntime({ store: other, workflows: [job], reactions: [reaction] });
  try {
    // The reaction has started (its control stream is written) before the first timed event.
    while ((await other.listStreams({ prefix: `$rewind-reaction-bench-lag-${stream}` })).length === 0) await sleep(5);
    for (let i = 0; i < events; i++) {
      const { events: written } = await app.append(stream, [{ type: 'Ping', data: { i } }]);
      appendedAt.set((written[0] as { id: string }).id, performance.now());
      await sleep(20);
    }
    await runtime.reactions.settled({ timeoutMs: 60_000 });
    const toAct: number[] = [];
    for (const [id, at] of appendedAt) {
      const acted = actedAt.get(id);
      if (acted !== undefined) toAct.push(acted - at);
    }
    recordLatency(SECTION, `append to act on ${b.label}, median of ${toAct.length}`, quantile(toAct, 0.5));
    recordLatency(SECTION, `append to act on ${b.label}, p99`, quantile(toAct, 0.99));
    // Append to RunStarted, from the events' and runs' recordedAt (ms resolution, one clock).
    const pairs: number[] = [];
    for (const e of await other.read(stream)) {
      const [started] = await other.read(`run-${reaction.name}:${e.id}`, { from: 1, to: 1 });
      if (started) pairs.push(Date.parse(started.recordedAt) - Date.parse(e.recordedAt));
    }
    note(
      SECTION,
      `${b.label}: append to the started run's RunStarted (recordedAt to recordedAt, ms) median ${fmt1(quantile(pairs, 0.5))}, ` +
        `p99 ${fmt1(quantile(pairs, 0.99))} of ${pairs.length}`,
    );
  } finally {
    await runtime.close();
    await other.close();
    await app.close();
  }
}

async function throughput(b: Backend, events: number): Promise<void> {
  for (const way of ['hand-written loop', 'reaction'] as const) {
    const store = await b.open();
    const queue = await openRunQueue(store);
    const stream = `tp-${way === 'reaction' ? 'r' : 'h'}-${Date.now().toString(36)}`;
    for (let i = 0; i < events; i += 500)
      await store.appendMany(
        Array.from({ length: 10 }, (_, s) => ({
          streamId: `${stream}-${s}`,
          events: Array.from({ length: Math.min(500, events - i) / 10 }, (_, k) => ({ type: 'Job', data: { n: i + k } })),
        })),
      );
    const name = `events handled by one process on ${b.label} (a run started for each), ${way}`;
    try {
      if (way === 'reaction') {
        const reaction: Reaction = defineReaction({
          name: `bench-tp-${stream}`,
          on: { types: ['Job'], streamPrefix: stream },
          act: (e) => ({ start: job, input: { n: (e.data as { n: number }).n } }),
        });
        await measure(
          SECTION,
          name,
          events,
          async () => {
            const runtime = createRuntime({ store, workflows: [job], queue, reactions: [reaction] });
            await runtime.reactions.settled({ timeoutMs: 600_000 });
            await runtime.close();
          },
          { unit: 'events/s', baseline: `events handled by one process on ${b.label} (a run started for each), hand-written loop` },
        );
      } else {
        const consumer = `bench-hand-${stream}`;
        await measure(
          SECTION,
          name,
          events,
          async () => {
            const runtime = createRuntime({ store, workflows: [job], queue });
            const stop = new AbortController();
            let seen = 0;
            for await (const e of store.subscribe({ consumer, filter: { types: ['Job'], streamPrefix: stream }, signal: stop.signal })) {
              await runtime.start(job, { n: (e.data as { n: number }).n }, { runId: `${consumer}:${e.id}`, detach: true });
              await store.checkpoint(consumer, e.position);
              if (++seen === events) stop.abort();
            }
            await runtime.close();
          },
          { unit: 'events/s' },
        );
      }
    } finally {
      await queue.close();
      await store.close();
    }
  }
}
