import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { isRunEvent, RunEvents, runStreamId, statusAfter } from '../../src/runtime/index.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { openStore } from '../../src/store/open.js';
import type { EventStore } from '../../src/store/types.js';
import { databaseUrl, uniqueSchema } from '../support/postgres.js';
import { tempDir } from '../support/temp.js';

// Given three processes appending to the same 300 runs at random (conflicts
// and all), one of them killed with SIGKILL, while this process empties the
// runs index and rebuilds it: when they stop, every listing the index answers
// is what the runs' events say.

const WRITER = new URL('../fixtures/run-index-writer.ts', import.meta.url).pathname;
const RUNS = 300;
const skipPostgres = process.env.REWIND_SKIP_POSTGRES === '1' || !inject('databaseUrls')?.length;

interface Writer {
  child: ChildProcess;
  ready: Promise<void>;
  done: Promise<string>;
}

function writer(url: string, seed: number): Writer {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER, url, String(seed), String(RUNS)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let onReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('ready')) onReady();
  });
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  // A writer gone already (killed) cannot be told to stop: nothing to report.
  child.stdin?.on('error', () => {});
  const done = new Promise<string>((resolve, reject) =>
    child.on('exit', (code, signal) => {
      onReady();
      if (signal === 'SIGKILL') resolve('killed');
      else if (code === 0) resolve(out.trim().split('\n').at(-1) ?? '');
      else reject(new Error(`writer exited ${code}: ${err}`));
    }),
  );
  return { child, ready, done };
}

/** Every run as its events say: the workflow of its RunStarted, the status after its last event. */
async function fromStreams(store: EventStore): Promise<Map<string, { workflow: string; status: string }>> {
  const runs = new Map<string, { workflow: string; status: string }>();
  for (let i = 0; i < RUNS; i++) {
    const runId = `r${String(i).padStart(3, '0')}`;
    const events = await store.read(runStreamId(runId));
    const first = events[0];
    const last = events.at(-1);
    if (first && last && isRunEvent(first, RunEvents.RunStarted))
      runs.set(runId, { workflow: first.data.workflow, status: statusAfter(last) });
  }
  return runs;
}

const backends = [
  {
    name: 'sqlite',
    setup() {
      const file = join(tempDir('rewind-run-index-procs-'), 'log.db');
      return {
        url: `sqlite:${file}`,
        async forget() {
          const db = new Database(file);
          db.pragma('busy_timeout = 5000');
          db.exec('DELETE FROM runs; UPDATE run_index_state SET built = 0;');
          db.close();
        },
      };
    },
  },
  ...(skipPostgres
    ? []
    : [
        {
          name: 'postgres',
          setup() {
            const schema = uniqueSchema();
            return {
              url: `${databaseUrl()}?schema=${schema}`,
              async forget() {
                const client = new pg.Client({ connectionString: databaseUrl() });
                await client.connect();
                await client.query(`DELETE FROM "${schema}".runs; UPDATE "${schema}".run_index_state SET built = false`);
                await client.end();
              },
            };
          },
        },
      ]),
];

describe.each(backends)('the runs index on $name, written by several processes at once', (backend) => {
  it('lists what the runs’ events say after appends, conflicts, kills and a rebuild in the middle of them', {
    timeout: 120_000,
  }, async () => {
    const { url, forget } = backend.setup();
    const store = await openStore(url);
    let writers: Writer[] = [];
    try {
      // Rounds: writers busy, the index emptied and rebuilt under them, the writers stopped at once
      // (so a row the rebuild got wrong is not mended by a later append), then the index checked.
      for (let round = 0; round < 3; round++) {
        writers = [writer(url, 3 * round + 1), writer(url, 3 * round + 2), writer(url, 3 * round + 3)];
        await Promise.all(writers.map((w) => w.ready));
        // Busy writers, however slow the machine: the log grows by 30 events before the index is taken away.
        const head = await store.headPosition();
        const busyBy = Date.now() + 30_000;
        while ((await store.headPosition()) < head + 30 && Date.now() < busyBy) await sleep(20);
        if (round === 1) writers[0]?.child.kill('SIGKILL');
        await forget();
        await createRuntime({ store }).countRuns();
        for (const w of writers) if (!w.child.killed) w.child.stdin?.end('stop\n');
        const ends = await Promise.all(writers.map((w) => w.done));
        expect(
          ends.filter((e) => e !== 'killed').every((e) => /stopped [1-9]/.test(e)),
          ends.join(', '),
        ).toBe(true);
        if (round === 1) expect(ends[0]).toBe('killed');

        const want = await fromStreams(store);
        const runtime = createRuntime({ store });
        const listed = await runtime.list();
        expect(new Map(listed.map((r) => [r.runId, { workflow: r.workflow, status: r.status }]))).toEqual(want);
        for (const status of new Set([...want.values()].map((r) => r.status)))
          expect((await runtime.list({ status: status as never, order: 'newest' })).map((r) => r.runId).sort()).toEqual(
            [...want].filter(([, r]) => r.status === status).map(([id]) => id),
          );
      }
    } finally {
      for (const w of writers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
      await store.close();
    }
  });
});
