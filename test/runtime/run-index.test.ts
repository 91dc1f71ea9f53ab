import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { ValidationError } from '../../src/events/errors.js';
import { RunEvents, type RunStartedData, runStreamId } from '../../src/runtime/index.js';
import { RUN_STATUSES, type RunStatus, type RunSummary } from '../../src/runtime/model/run.js';
import type { RunPageOptions } from '../../src/runtime/run-index.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { openStore } from '../../src/store/open.js';
import type { RunOrder } from '../../src/store/run-index.js';
import type { EventStore } from '../../src/store/types.js';
import { databaseUrl, uniqueSchema } from '../support/postgres.js';
import { tempDir } from '../support/temp.js';

// The runs index: what listPage and countRuns answer from it must be what the
// runs' own events say (each run's status is its last event's), on every
// backend, after any mix of appends, refusals and repeats, and for a log
// written before the index existed once it has been indexed.

const skipPostgres = process.env.REWIND_SKIP_POSTGRES === '1' || !inject('databaseUrls')?.length;

interface Backend {
  name: string;
  open(): Promise<{ store: EventStore; reopen(): Promise<EventStore>; forget(): Promise<void>; downgrade(): Promise<void> }>;
}

/** What an earlier build leaves: no rows, and the index marked as waiting for its rebuild. */
const FORGET = 'DELETE FROM runs; UPDATE run_index_state SET built = false;';

/** The schema as the release before the runs index left it: neither the index's tables nor migrations 10 and 11. */
const BEFORE_THE_INDEX = {
  sqlite: 'DROP TABLE runs; DROP TABLE run_index_state;',
  postgres: `DROP FUNCTION append_indexed(jsonb, boolean); DROP TABLE runs; DROP TABLE run_index_state;
    DROP INDEX projection_docs_by_stream; CREATE INDEX projection_docs_by_stream ON projection_docs (projection, generation, stream_id);
    DELETE FROM migrations WHERE version > 9;`,
};

const backends: Backend[] = [
  {
    name: 'memory',
    async open() {
      const store = await openStore('memory:');
      return { store, reopen: async () => store, forget: async () => {}, downgrade: async () => {} };
    },
  },
  {
    name: 'sqlite',
    async open() {
      const file = join(tempDir('rewind-run-index-'), 'log.db');
      const store = await openStore(`sqlite:${file}`, { durability: 'normal' });
      return {
        store,
        reopen: () => openStore(`sqlite:${file}`, { durability: 'normal' }),
        async forget() {
          const db = new Database(file);
          db.exec(FORGET.replace('false', '0'));
          db.close();
        },
        async downgrade() {
          const db = new Database(file);
          db.exec(BEFORE_THE_INDEX.sqlite);
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
          async open() {
            const schema = uniqueSchema();
            const store = await openStore(databaseUrl(), { schema });
            return {
              store,
              reopen: () => openStore(databaseUrl(), { schema }),
              async forget() {
                const client = new pg.Client({ connectionString: databaseUrl() });
                await client.connect();
                await client.query(`SET search_path TO "${schema}"; ${FORGET}`);
                await client.end();
              },
              async downgrade() {
                const client = new pg.Client({ connectionString: databaseUrl() });
                await client.connect();
                await client.query(`SET search_path TO "${schema}"; ${BEFORE_THE_INDEX.postgres}`);
                await client.end();
              },
            };
          },
        },
      ]),
];

/** The run events a step of a history appends, by the status they leave the run in. */
const LAST_EVENT: Record<Exclude<RunStatus, 'running'> | 'step' | 'settling', { type: string; data: unknown }> = {
  step: { type: RunEvents.StepCompleted, data: { seq: 1, name: 's', idempotencyKey: 'k', result: null } },
  settling: { type: RunEvents.StepCompleted, data: { seq: 1, name: 's', idempotencyKey: 'k', result: null, settling: true } },
  waiting: { type: RunEvents.WaitStarted, data: { seq: 1, name: 'go' } },
  completed: { type: RunEvents.RunCompleted, data: { output: null } },
  failed: { type: RunEvents.RunFailed, data: { error: { name: 'Error', message: 'no' } } },
  rolling_back: { type: RunEvents.RollbackRequested, data: { to: 'start' } },
  rolled_back: { type: RunEvents.RolledBack, data: { targetVersion: 1 } },
  needs_attention: { type: RunEvents.NeedsAttention, data: { reason: 'stuck' } },
  cancelled: { type: RunEvents.RunCancelled, data: { reason: 'stop' } },
};
type Move = keyof typeof LAST_EVENT;
const MOVES = Object.keys(LAST_EVENT) as Move[];
const STATUS_AFTER: Record<Move, RunStatus> = {
  ...(Object.fromEntries(MOVES.map((m) => [m, m])) as Record<Move, RunStatus>),
  step: 'running',
  settling: 'rolling_back',
};

/** One append: runs started (with their first moves) and moves of runs started before, several streams at once. */
interface Batch {
  starts: { workflow: 'a' | 'b' | 'c'; moves: Move[] }[];
  moves: { run: number; moves: Move[] }[];
  /** Sent again after it landed (an idempotent repeat: nothing changes). */
  repeat: boolean;
  /** Sent once more with a stale expected version (refused whole: nothing changes). */
  stale: boolean;
}

const batchArb: fc.Arbitrary<Batch> = fc.record({
  starts: fc.array(fc.record({ workflow: fc.constantFrom('a', 'b', 'c'), moves: fc.array(fc.constantFrom(...MOVES), { maxLength: 2 }) }), {
    maxLength: 3,
  }),
  moves: fc.array(fc.record({ run: fc.nat(), moves: fc.array(fc.constantFrom(...MOVES), { minLength: 1, maxLength: 3 }) }), {
    maxLength: 3,
  }),
  repeat: fc.boolean(),
  stale: fc.boolean(),
});

interface Model {
  runs: { runId: string; workflow: string; status: RunStatus; version: number; startedAt?: string }[];
}

/** Appends the batches (each one appendMany with ids of its own), keeping the model of what each run's events say. */
async function play(store: EventStore, batches: Batch[], model: Model): Promise<void> {
  for (const batch of batches) {
    const appends: { streamId: string; expectedVersion: number | 'no_stream'; events: { id: string; type: string; data: unknown }[] }[] =
      [];
    const touched = new Set<number>();
    const after: Model['runs'] = [];
    for (const start of batch.starts) {
      const runId = `r${String(model.runs.length + after.length).padStart(4, '0')}`;
      const data: RunStartedData = { runId, workflow: start.workflow, workflowVersion: '1', input: null };
      const events = [{ type: RunEvents.RunStarted, data }, ...start.moves.map((m) => LAST_EVENT[m])];
      appends.push({
        streamId: runStreamId(runId),
        expectedVersion: 'no_stream',
        events: events.map((e, i) => ({ ...e, id: `${runId}-${i + 1}` })),
      });
      after.push({
        runId,
        workflow: start.workflow,
        status: start.moves.length ? STATUS_AFTER[start.moves.at(-1) as Move] : 'running',
        version: events.length,
      });
    }
    for (const move of batch.moves) {
      if (model.runs.length === 0) break;
      const i = move.run % model.runs.length;
      if (touched.has(i)) continue;
      touched.add(i);
      const run = model.runs[i] as Model['runs'][number];
      appends.push({
        streamId: runStreamId(run.runId),
        expectedVersion: run.version,
        events: move.moves.map((m, k) => ({ ...LAST_EVENT[m], id: `${run.runId}-${run.version + k + 1}` })),
      });
    }
    if (appends.length === 0) continue;
    await store.appendMany(appends);
    if (batch.repeat) await store.appendMany(appends);
    if (batch.stale && appends.some((a) => a.expectedVersion !== 'no_stream'))
      await expect(
        store.appendMany(appends.map((a) => ({ ...a, events: a.events.map((e) => ({ ...e, id: `${e.id}-stale` })) }))),
      ).rejects.toThrow();
    for (const move of batch.moves) {
      if (model.runs.length === 0) break;
      const i = move.run % model.runs.length;
      if (!touched.delete(i)) continue;
      const run = model.runs[i] as Model['runs'][number];
      run.version += move.moves.length;
      run.status = STATUS_AFTER[move.moves.at(-1) as Move];
    }
    model.runs.push(...after);
  }
}

/** Every page of a listing, `limit` at a time. */
async function listAll(store: EventStore, options: RunPageOptions): Promise<{ runs: RunSummary[]; pages: number }> {
  const runtime = createRuntime({ store });
  const runs: RunSummary[] = [];
  let after: string | undefined;
  let pages = 0;
  do {
    const page = await runtime.listPage({ ...options, ...(after === undefined ? {} : { after }) });
    runs.push(...page.runs);
    after = page.next;
    pages++;
  } while (after !== undefined);
  return { runs, pages };
}

/** What a listing must give, worked out from the runs' events (their RunStarted times read back from the log). */
async function expected(
  store: EventStore,
  model: Model,
  filter: { status?: RunStatus; workflow?: string; idPrefix?: string },
  order: RunOrder,
) {
  const runs = [];
  for (const run of model.runs) {
    if ((filter.status && run.status !== filter.status) || (filter.workflow && run.workflow !== filter.workflow)) continue;
    if (filter.idPrefix && !run.runId.startsWith(filter.idPrefix)) continue;
    const [first] = await store.read(runStreamId(run.runId), { from: 1, to: 1 });
    runs.push({ runId: run.runId, startedAt: first?.recordedAt as string, status: run.status, version: run.version });
  }
  const key = (r: { runId: string; startedAt: string }) => (order === 'id' ? [r.runId] : [r.startedAt, r.runId]);
  const cmp = (x: string[], y: string[]) => (x.join('\u0000') < y.join('\u0000') ? -1 : x.join('\u0000') > y.join('\u0000') ? 1 : 0);
  runs.sort((a, b) => (order === 'newest' ? -1 : 1) * cmp(key(a), key(b)));
  return runs;
}

const FILTERS: { status?: RunStatus; workflow?: string; idPrefix?: string }[] = [
  { idPrefix: 'r000' },
  { idPrefix: 'r001', status: 'running' },
  {},
  { status: 'running' },
  { status: 'completed' },
  { workflow: 'b' },
  { workflow: 'a', status: 'waiting' },
];
const ORDERS: RunOrder[] = ['id', 'newest', 'oldest'];

describe.each(backends)('the runs index on $name', (backend) => {
  it('given any mix of appends, repeats and refusals, every filter and order lists what the runs’ events say, page by page', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(batchArb, { minLength: 1, maxLength: 12 }), fc.integer({ min: 1, max: 4 }), async (batches, limit) => {
        const { store } = await backend.open();
        try {
          const model: Model = { runs: [] };
          await play(store, batches, model);
          for (const filter of FILTERS)
            for (const order of ORDERS) {
              const { runs } = await listAll(store, { ...filter, order, limit });
              const want = await expected(store, model, filter, order);
              expect(runs.map((r) => [r.runId, r.status, r.version, r.waitingFor])).toEqual(
                want.map((r) => [r.runId, r.status, r.version, r.status === 'waiting' ? 'go' : undefined]),
              );
            }
          const counts = await createRuntime({ store }).countRuns();
          expect(counts.total).toBe(model.runs.length);
          for (const status of RUN_STATUSES)
            expect(counts.byStatus[status] ?? 0).toBe(model.runs.filter((r) => r.status === status).length);
        } finally {
          await store.close();
        }
      }),
      { numRuns: backend.name === 'memory' ? 60 : 15 },
    );
  });

  it.skipIf(backend.name === 'memory')(
    'given a log written before the index, the first listing indexes it once, telling its progress',
    async () => {
      const { store, reopen, forget } = await backend.open();
      const model: Model = { runs: [] };
      const starts = Array.from({ length: 2500 }, (_, i) => ({
        workflow: (['a', 'b', 'c'] as const)[i % 3] as 'a' | 'b' | 'c',
        moves: i % 4 ? [MOVES[i % MOVES.length] as Move] : [],
      }));
      for (let i = 0; i < starts.length; i += 500)
        await play(store, [{ starts: starts.slice(i, i + 500), moves: [], repeat: false, stale: false }], model);
      const before = await createRuntime({ store }).listPage({ status: 'completed', order: 'newest', limit: 1000 });
      await store.close();
      await forget();

      const old = await reopen();
      try {
        const progress: [number, number][] = [];
        const runtime = createRuntime({ store: old, onIndexProgress: (done, total) => progress.push([done, total]) });
        const [first, second] = await Promise.all([
          runtime.listPage({ status: 'completed', order: 'newest', limit: 1000 }),
          runtime.countRuns(),
        ]);
        expect(progress).toEqual([
          [1000, 2500],
          [2000, 2500],
          [2500, 2500],
        ]);
        expect(first).toEqual(before);
        expect(second.total).toBe(2500);
        // Indexed for good: the next listing rebuilds nothing.
        await createRuntime({ store: old, onIndexProgress: () => progress.push([-1, -1]) }).listPage({ limit: 1 });
        expect(progress).toHaveLength(3);
      } finally {
        await old.close();
      }
    },
  );

  it.skipIf(backend.name === 'memory')(
    'given a log of the release before the index, opening it migrates it and the first listing indexes every run',
    async () => {
      const { store, reopen, downgrade } = await backend.open();
      const model: Model = { runs: [] };
      const starts = Array.from({ length: 60 }, (_, i) => ({ workflow: 'a' as const, moves: [MOVES[i % MOVES.length] as Move] }));
      await play(store, [{ starts, moves: [], repeat: false, stale: false }], model);
      const before = await createRuntime({ store }).list({ order: 'newest' });
      await store.close();
      await downgrade();

      const upgraded = await reopen();
      try {
        const runtime = createRuntime({ store: upgraded });
        expect(await runtime.list({ order: 'newest' })).toEqual(before);
        expect((await runtime.countRuns()).total).toBe(60);
        // Indexed, the runs go on being kept in it by new appends.
        await play(
          upgraded,
          [{ starts: [{ workflow: 'b', moves: [] }], moves: [{ run: 0, moves: ['failed'] }], repeat: false, stale: false }],
          model,
        );
        const failed = (await runtime.list({ status: 'failed' })).map((r) => r.runId);
        expect(failed).toEqual(model.runs.filter((r) => r.status === 'failed').map((r) => r.runId));
        expect(failed).toContain('r0000');
        expect((await runtime.list({ workflow: 'b' })).map((r) => r.runId)).toEqual(['r0060']);
      } finally {
        await upgraded.close();
      }
    },
  );

  it.skipIf(backend.name === 'memory')('appends going on during the rebuild end up in the index as their last events say', async () => {
    const { store, reopen, forget } = await backend.open();
    const model: Model = { runs: [] };
    await play(
      store,
      [{ starts: Array.from({ length: 3000 }, () => ({ workflow: 'a' as const, moves: [] })), moves: [], repeat: false, stale: false }],
      model,
    );
    await store.close();
    await forget();
    const old = await reopen();
    try {
      const listing = createRuntime({ store: old }).countRuns();
      // Meanwhile every run moves on, in the order the rebuild reads them and the reverse.
      const order = [...model.runs.keys()];
      for (let i = 0; i < 30; i++) {
        const batch = order.splice(0, 100).map((run) => ({ run, moves: ['completed' as Move] }));
        await play(old, [{ starts: [], moves: batch, repeat: false, stale: false }], model);
      }
      await listing;
      const { runs } = await listAll(old, { status: 'completed', limit: 1000 });
      expect(runs).toHaveLength(3000);
    } finally {
      await old.close();
    }
  });

  it('refuses an unknown order, and a cursor of another order, with a typed error that writes nothing', async () => {
    const { store } = await backend.open();
    try {
      const runtime = createRuntime({ store });
      await expect(runtime.listPage({ order: 'sideways' as RunOrder })).rejects.toThrow(ValidationError);
      await expect(runtime.listPage({ order: 'sideways' as RunOrder })).rejects.toThrow(/unknown order "sideways"/);
      await expect(runtime.listPage({ order: 'newest', after: 'r0001' })).rejects.toThrow(/not one of a list ordered newest/);
      await expect(runtime.listPage({ status: 'sleeping' as RunStatus })).rejects.toThrow(/unknown status "sleeping"/);
      expect(await store.headPosition()).toBe(0);
    } finally {
      await store.close();
    }
  });
});

describe('the runs index on a read-only copy of a log written before it', () => {
  it('lists the runs from their streams, in every order', async () => {
    const file = join(tempDir('rewind-run-index-ro-'), 'log.db');
    const store = await openStore(`sqlite:${file}`);
    const model: Model = { runs: [] };
    await play(
      store,
      [
        {
          starts: [
            { workflow: 'a', moves: ['completed'] },
            { workflow: 'b', moves: [] },
            { workflow: 'a', moves: ['failed'] },
          ],
          moves: [],
          repeat: false,
          stale: false,
        },
      ],
      model,
    );
    await store.close();
    const db = new Database(file);
    db.exec(FORGET.replace('false', '0'));
    db.close();
    const copy = await openStore(`sqlite:${file}`, { readOnly: true });
    try {
      const runtime = createRuntime({ store: copy });
      expect((await runtime.listPage({ workflow: 'a', order: 'newest', limit: 1 })).runs.map((r) => r.runId)).toEqual(['r0002']);
      expect((await runtime.listPage({ status: 'running' })).runs.map((r) => r.runId)).toEqual(['r0001']);
      expect((await runtime.countRuns()).byStatus).toEqual({ completed: 1, running: 1, failed: 1 });
    } finally {
      await copy.close();
    }
  });
});
