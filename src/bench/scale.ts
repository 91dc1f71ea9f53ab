import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { createRuntime, RunEvents, type RunPageOptions, type RunStatus, runStreamId } from '../runtime/index.js';
import { openStore } from '../store/open.js';
import type { EventStore, StreamAppend } from '../store/types.js';
import { fmt1, note, quantile, record, recordLatency, target } from './lib.js';

const SECTION = 'scale';
const WORKFLOWS = 10;
const PAGE = 50;

/** How a production log's runs end, roughly: most completed, a few failed, some still going. */
const MIX: [RunStatus | 'step', number, { type: string; data: unknown }][] = [
  ['completed', 0.86, { type: RunEvents.RunCompleted, data: { output: { ok: true } } }],
  ['failed', 0.05, { type: RunEvents.RunFailed, data: { error: { name: 'Error', message: 'upstream 503' } } }],
  ['step', 0.04, { type: RunEvents.StepCompleted, data: { seq: 3, name: 'search', idempotencyKey: 'k', result: { hits: 3 } } }],
  ['waiting', 0.03, { type: RunEvents.WaitStarted, data: { seq: 4, name: 'approval' } }],
  ['rolled_back', 0.015, { type: RunEvents.RolledBack, data: { targetVersion: 1 } }],
  ['needs_attention', 0.005, { type: RunEvents.NeedsAttention, data: { reason: 'compensation failed' } }],
];

/** The pages a user asks for: every filter, in the orders the CLI, the API and the debugger use. */
const QUERIES: { name: string; query: RunPageOptions }[] = [
  { name: 'all, by id', query: {} },
  { name: 'all, newest', query: { order: 'newest' } },
  { name: 'running (few), by id', query: { status: 'running' } },
  { name: 'needs attention (fewest), newest', query: { status: 'needs_attention', order: 'newest' } },
  { name: 'failed, newest', query: { status: 'failed', order: 'newest' } },
  { name: 'one workflow, oldest', query: { workflow: 'agent-3', order: 'oldest' } },
  { name: 'one workflow, completed, newest', query: { workflow: 'agent-7', status: 'completed', order: 'newest' } },
];

interface Backend {
  label: 'sqlite' | 'postgres';
  open(): Promise<EventStore>;
  /** What an earlier build leaves: the index emptied and marked for its rebuild. */
  forget(): Promise<void>;
  cleanup(): Promise<void>;
}

/**
 * Issue 28, runs at a million: a log of N runs (RunStarted and the event it
 * ended or rests at, through store.appendMany, 1,000 runs a call), then a page
 * of 50 runs for every filter and order, at N = 10,000, 100,000 and 1,000,000
 * (times `scale`); the time to index an existing log of the largest N once;
 * and, at the smallest N, the listing the index replaced (every run's stream read).
 */
export async function benchScale(scale: number, databaseUrl: (() => Promise<string>) | undefined): Promise<void> {
  const tiers = [10_000, 100_000, 1_000_000].map((n) => Math.max(1_000, Math.round(n * scale)));
  const dir = mkdtempSync(join(tmpdir(), 'rewind-bench-scale-'));
  const backends: Backend[] = [sqliteBackend(join(dir, 'scale.db'))];
  try {
    if (databaseUrl) backends.push(postgresBackend(await databaseUrl()));
    for (const b of backends) {
      try {
        await benchBackend(b, tiers);
      } finally {
        await b.cleanup();
      }
    }
    note(
      SECTION,
      `each page: the median of 15 listPage calls of ${PAGE} runs through createRuntime, first page and one deep page (after the cursor of page 1,000 for 'all'); ` +
        `runs written through store.appendMany (hashing, the chain and the runs index as any append), ${Math.round((MIX[0]?.[1] ?? 0) * 100)}% completed and the rest failed, running, waiting, rolled back, needing attention, over ${WORKFLOWS} workflows`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function benchBackend(b: Backend, tiers: number[]): Promise<void> {
  let store = await b.open();
  let written = 0;
  const worst: number[] = [];
  try {
    for (const n of tiers) {
      const started = process.hrtime.bigint();
      await writeRuns(store, written, n);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      record({
        section: SECTION,
        name: `${b.label}: write runs ${written.toLocaleString('en-US')} → ${n.toLocaleString('en-US')}`,
        ops: n - written,
        seconds,
        unit: 'runs/s',
      });
      written = n;
      const runtime = createRuntime({ store });
      let slowest = 0;
      for (const { name, query } of QUERIES) {
        const ms = await timePage(runtime, { ...query, limit: PAGE });
        slowest = Math.max(slowest, ms);
        recordLatency(SECTION, `${b.label} @${short(n)}: ${name}`, ms);
      }
      // A deep page: where a cursor taken far into the listing leads.
      let after: string | undefined;
      for (let i = 0; i < Math.min(1000, Math.floor(n / PAGE) - 1); i += 100) {
        after = (await runtime.listPage({ limit: PAGE, ...(after ? { after } : {}) })).next;
      }
      const deep = await timePage(runtime, { limit: PAGE, ...(after ? { after } : {}) });
      recordLatency(SECTION, `${b.label} @${short(n)}: all, by id, deep page`, deep);
      const counts = await timed(() => runtime.countRuns());
      recordLatency(SECTION, `${b.label} @${short(n)}: counts per workflow and status`, counts);
      worst.push(Math.max(slowest, deep));
      if (n === tiers[0]) {
        // The listing before the index: the same filter read from every run's stream (a store behind a wrapper has no index).
        const wrapped = new Proxy(store, {
          get: (t, k) => (typeof Reflect.get(t, k) === 'function' ? Reflect.get(t, k).bind(t) : Reflect.get(t, k)),
        });
        const scan = await timed(() => createRuntime({ store: wrapped }).listPage({ status: 'needs_attention', limit: PAGE }));
        recordLatency(SECTION, `${b.label} @${short(n)}: needs attention, read from the streams (no index)`, scan);
      }
    }
    target({
      section: SECTION,
      what: `${b.label}: a page of ${PAGE} runs, any filter, at most 50 ms at every size up to ${short(tiers.at(-1) as number)}`,
      met: worst.every((ms) => ms <= 50),
      got: worst.map((ms, i) => `${fmt1(Math.round(ms * 10) / 10)} ms @${short(tiers[i] as number)}`).join(', '),
    });
    // An existing log of the largest size, as an earlier build left it: indexed once.
    await store.close();
    await b.forget();
    store = await b.open();
    const started = process.hrtime.bigint();
    await createRuntime({ store }).countRuns();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    record({
      section: SECTION,
      name: `${b.label}: index an existing log of ${short(written)} runs (once)`,
      ops: written,
      seconds,
      unit: 'runs/s',
    });
  } finally {
    await store.close();
  }
}

async function timePage(runtime: ReturnType<typeof createRuntime>, query: RunPageOptions): Promise<number> {
  await runtime.listPage(query);
  const samples: number[] = [];
  for (let i = 0; i < 15; i++) samples.push(await timed(() => runtime.listPage(query)));
  return quantile(samples, 0.5);
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const short = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1_000 ? `${n / 1_000}k` : String(n));

/** Runs `from`..`to`-1: a call of 1,000 runs at a time, four calls in flight (the store's group commit gathers them). */
async function writeRuns(store: EventStore, from: number, to: number): Promise<void> {
  const calls: StreamAppend[][] = [];
  for (let start = from; start < to; start += 1000) {
    const appends: StreamAppend[] = [];
    for (let i = start; i < Math.min(to, start + 1000); i++) {
      const runId = `run${String(i).padStart(8, '0')}`;
      const end = endOf(i);
      appends.push({
        streamId: runStreamId(runId),
        expectedVersion: 'no_stream',
        events: [
          { type: RunEvents.RunStarted, data: { runId, workflow: `agent-${i % WORKFLOWS}`, workflowVersion: '1', input: { ticket: i } } },
          ...(end ? [end] : []),
        ],
      });
    }
    calls.push(appends);
  }
  for (let i = 0; i < calls.length; i += 4) await Promise.all(calls.slice(i, i + 4).map((c) => store.appendMany(c)));
}

/** The i-th run's last event, spread by a fixed hash of i so every tier holds the same mix. */
function endOf(i: number): { type: string; data: unknown } | undefined {
  let x = (Math.imul(i ^ 0x9e3779b9, 0x85ebca6b) >>> 0) / 2 ** 32;
  for (const [, share, event] of MIX) {
    if (x < share) return event;
    x -= share;
  }
  return undefined;
}

function sqliteBackend(file: string): Backend {
  return {
    label: 'sqlite',
    open: () => openStore(`sqlite:${file}`),
    async forget() {
      const db = new Database(file);
      db.exec('DELETE FROM runs; UPDATE run_index_state SET built = 0;');
      db.close();
    },
    async cleanup() {},
  };
}

function postgresBackend(url: string): Backend {
  const schema = `bench_scale_${Date.now().toString(36)}`;
  const sql = async (text: string) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(text);
    } finally {
      await client.end();
    }
  };
  return {
    label: 'postgres',
    open: () => openStore(url, { schema }),
    forget: () => sql(`DELETE FROM "${schema}".runs; UPDATE "${schema}".run_index_state SET built = false;`),
    cleanup: () => sql(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`),
  };
}
