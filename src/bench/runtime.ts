import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRuntime, defineWorkflow } from '../runtime/index.js';
import { openStore } from '../store/open.js';
import type { EventStore } from '../store/types.js';
import { note, record, target } from './lib.js';

const SECTION = 'runtime';
/** The hung runs' lease (see the crash below): short, so the resumes do not wait out the default. */
const HUNG_LEASE_MS = 500;

/** Emits `n` domain events, checkpoints, runs a compensable step, then a step that may hang (the crash point). */
function longWorkflow(world: { hang: boolean }) {
  return defineWorkflow<{ n: number }, { count: number }, { type: 'Ticked'; data: { i: number } }, { count: number }>({
    name: 'bench-long',
    initialState: { count: 0 },
    apply: (s) => ({ count: s.count + 1 }),
    // Declared, not inline: the timed rollback runs in a fresh runtime, which would otherwise replay the run to find it.
    compensations: { book: () => undefined },
    run: async (ctx, input) => {
      for (let i = 0; i < input.n; i++) await ctx.emit({ type: 'Ticked', data: { i } });
      await ctx.checkpoint('near-end');
      await ctx.step('book', ({ idempotencyKey }) => idempotencyKey);
      await ctx.emit({ type: 'Ticked', data: { i: -1 } });
      await ctx.step('wait', () => (world.hang ? new Promise<string>(() => {}) : 'done'));
      return ctx.state;
    },
  });
}

const stepsWorkflow = defineWorkflow<{ n: number }, null, { type: 'None'; data: null }, number>({
  name: 'bench-steps',
  initialState: null,
  apply: (s) => s,
  run: async (ctx, input) => {
    let sum = 0;
    for (let i = 0; i < input.n; i++) sum += await ctx.step(`s${i}`, () => i);
    return sum;
  },
});

/**
 * Issue 3: the cost of a journaled step over a plain call (SQLite and
 * PostgreSQL), and rollback and resume latency for runs of 100, 10,000 and
 * 100,000 events on SQLite.
 */
export async function benchRuntime(scale: number, databaseUrl: (() => Promise<string>) | undefined): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-bench-rt-'));
  try {
    const steps = Math.max(10, Math.round(200 * scale));
    const plain = async (i: number) => i;
    const start = process.hrtime.bigint();
    let sum = 0;
    for (let i = 0; i < steps * 1000; i++) sum += await plain(i);
    const plainFigure = record({
      section: SECTION,
      name: 'plain async function call',
      ops: steps * 1000,
      seconds: Number(process.hrtime.bigint() - start) / 1e9,
      unit: 'ms per call',
      kind: 'latency',
    });
    void sum;
    const stepOn = async (label: string, store: EventStore) => {
      const runtime = createRuntime({ store, workflows: [stepsWorkflow] });
      await runtime.start(stepsWorkflow, { n: 5 }, { runId: `warm-${label}` });
      const t = process.hrtime.bigint();
      await runtime.start(stepsWorkflow, { n: steps }, { runId: `steps-${label}` });
      record({
        section: SECTION,
        name: `journaled step on ${label} (one commit: its start, with the previous step's result)`,
        ops: steps,
        seconds: Number(process.hrtime.bigint() - t) / 1e9,
        unit: 'ms per step',
        kind: 'latency',
        baseline: plainFigure.name,
      });
      await runtime.close();
    };
    const sqlite = await openStore(`sqlite:${join(dir, 'steps.db')}`);
    await stepOn('sqlite', sqlite);
    await sqlite.close();
    if (databaseUrl) {
      const schema = `bench_rt_${Date.now().toString(36)}`;
      const url = await databaseUrl();
      const store = await openStore(url, { schema });
      try {
        await stepOn('postgres', store);
      } finally {
        await store.close();
        const { default: pg } = await import('pg');
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        await c.query(`DROP SCHEMA ${schema} CASCADE`).catch(() => {});
        await c.end();
      }
    }
    note(
      SECTION,
      "a journaled step is one fsynced append (its start, carrying the previous step's result): its cost is the commit, not the library",
    );

    // Rollback and resume for long runs. The runs are built through the runtime itself (every event a real
    // ctx.emit) on a connection with durability 'normal' to save time; the file is then reopened with the
    // default durability ('full') for the timed part.
    const lengths = [100, 10_000, 100_000];
    const file = join(dir, 'runs.db');
    const build = await openStore(`sqlite:${file}`, { durability: 'normal' });
    const built = createRuntime({ store: build, workflows: [longWorkflow({ hang: false })] });
    // A short lease: once this connection is closed (the 'crash'), the hung runs' leases lapse within it.
    const hanging = createRuntime({ store: build, workflows: [longWorkflow({ hang: true })], leaseMs: HUNG_LEASE_MS });
    const t0 = Date.now();
    for (const n of lengths) {
      await built.start('bench-long', { n }, { runId: `rb-${n}` });
      // The crash: the run hangs inside its last step and its process is never heard of again.
      void hanging.start('bench-long', { n }, { runId: `cr-${n}` }).catch(() => {});
      for (;;) {
        const [tail] = await build.read(`run-cr-${n}`, { direction: 'backward', limit: 1 });
        if (tail?.type === 'StepStarted' && (tail.data as { name: string }).name === 'wait') break;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    note(
      SECTION,
      `runs of ${lengths.join(', ')} events built through the runtime (ctx.emit per event) in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
    await build.close();

    const store = await openStore(`sqlite:${file}`);
    const rollback: number[] = [];
    let first: string | undefined;
    for (const n of lengths) {
      const runtime = createRuntime({ store, workflows: [longWorkflow({ hang: false })] });
      const version = await store.streamVersion(`run-rb-${n}`);
      const t = process.hrtime.bigint();
      const info = await runtime.rollback(`rb-${n}`, { to: 'latest', reason: 'bench' });
      const seconds = Number(process.hrtime.bigint() - t) / 1e9;
      if (info.status !== 'rolled_back') note(SECTION, `rollback of rb-${n} ended ${info.status}`);
      rollback.push(seconds);
      const name = `rollback to the latest checkpoint, run of ${version} events`;
      record({ section: SECTION, name, ops: 1, seconds, unit: 'ms', kind: 'latency', baseline: first });
      first ??= name;
    }
    const spread = (rollback[2] as number) / (rollback[0] as number);
    target({
      section: SECTION,
      what: 'rollback latency flat: 100k-event run within 2× of the 100-event run',
      met: spread <= 2,
      got: `${spread.toFixed(1)}×`,
      why:
        spread <= 2
          ? undefined
          : 'the rollback reads only the events after its target (declared compensations, info from the checkpoint): ' +
            'a spread this large points at the store (page cache, fsync), not at the number of events read',
    });
    for (const n of lengths) {
      const runtime = createRuntime({ store, workflows: [longWorkflow({ hang: false })] });
      const version = await store.streamVersion(`run-cr-${n}`);
      // A crashed process in another pid is seen gone at once; this one shares our pid, so its lease is let lapse first.
      for (;;) {
        const lease = await store.leaseOf(`run-cr-${n}`);
        if (!lease || lease.until <= Date.now()) break;
        await new Promise((r) => setTimeout(r, lease.until - Date.now() + 1));
      }
      const t = process.hrtime.bigint();
      const info = await runtime.resume(`cr-${n}`);
      const seconds = Number(process.hrtime.bigint() - t) / 1e9;
      if (info.status !== 'completed') note(SECTION, `resume of cr-${n} ended ${info.status}`);
      record({ section: SECTION, name: `resume after a crash, run of ${version} events`, ops: 1, seconds, unit: 'ms', kind: 'latency' });
    }
    note(SECTION, 'resume replays the journal (every recorded call answered from the log): linear in the run by design');
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
