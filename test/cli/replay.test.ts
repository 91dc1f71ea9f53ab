import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createRuntime,
  type EventEnvelope,
  openStore,
  parseExportedRun,
  type ReplayCheckOptions,
  RunEvents,
  readExportedRun,
  type Workflow,
} from '../../src/index.js';
import type { EventStore } from '../../src/store/types.js';
import { crashAfter, SimulatedCrash } from '../runtime/helpers.js';
import { databaseUrl, uniqueSchema } from '../support/postgres.js';
import { tempDir } from '../support/temp.js';
import { orderWorkflow } from './fixtures/orders/orders.js';
import { runCli } from './run-cli.js';

const COMPLETED = 150;
const PAST_EMAIL = 100;
const PAST_CHARGE = 50;
const RUNS = COMPLETED + PAST_EMAIL + PAST_CHARGE;

const completed = (name: string) => (e: EventEnvelope) => e.type === RunEvents.StepCompleted && (e.data as { name: string }).name === name;
const started = (name: string) => (e: EventEnvelope) => e.type === RunEvents.StepStarted && (e.data as { name: string }).name === name;

/**
 * A log as the first deployment left it: runs that completed, runs that
 * stopped (a crash) after their email, and runs that stopped in their
 * charge (the crash came as it started), before the point where later code
 * changes. (A step's completion is written with the next step's start, so a
 * run that went past its charge has its email started.)
 */
async function populate(store: EventStore): Promise<void> {
  const v1 = orderWorkflow('v1');
  const runtime = createRuntime({ store, workflows: [v1] });
  const batch = async (ids: string[], start: (id: string, n: number) => Promise<unknown>) => {
    for (let i = 0; i < ids.length; i += 25) await Promise.all(ids.slice(i, i + 25).map((id, j) => start(id, i + j)));
  };
  const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);
  await batch(ids('done', COMPLETED), (id, n) => runtime.start(v1, { n }, { runId: id }));
  for (const [prefix, n, crash] of [
    ['past-email', PAST_EMAIL, completed('email')],
    ['past-charge', PAST_CHARGE, started('charge')],
  ] as const) {
    await batch(ids(prefix, n), (id, i) =>
      expect(createRuntime({ store: crashAfter(store, crash) }).start(v1, { n: i }, { runId: id })).rejects.toBeInstanceOf(SimulatedCrash),
    );
  }
}

const fixture = (name: string) => `test/cli/fixtures/orders/${name}.ts`;

async function replay(db: string, code: string, ...args: string[]) {
  const out = await runCli(['replay', '--workflows', fixture(code), '--db', db, ...args]);
  return { ...out, report: out.stdout.startsWith('{') ? JSON.parse(out.stdout) : undefined };
}

/** The same check in-process, through the API the command uses. */
async function check(db: string, workflows: Workflow[], options: ReplayCheckOptions = {}) {
  const store = await openStore(db);
  try {
    return await createRuntime({ store, workflows }).replayCheck(options);
  } finally {
    await store.close();
  }
}

describe.each([
  ['SQLite', async () => `sqlite:${join(tempDir('rewind-replay-'), 'rewind.db')}`],
  ['PostgreSQL', async () => `${databaseUrl()}?schema=${uniqueSchema()}`],
])('rewind replay over %s, %i runs', (backend, url) => {
  let db: string;
  beforeAll(async () => {
    db = await url();
    const store = await openStore(db, db.startsWith('sqlite:') ? { durability: 'normal' } : {});
    try {
      await populate(store);
    } finally {
      await store.close();
    }
  });

  it('passes a change made with ctx.changed: every run replays', async () => {
    if (backend === 'PostgreSQL') {
      const { code, report, stderr } = await replay(db, 'changed', '--json');
      expect(code, stderr).toBe(0);
      expect(report).toEqual({ checked: RUNS, replays: RUNS, diverges: 0, noCode: 0, skipped: 0, problems: [], ok: true });
    } else expect(await check(db, [orderWorkflow('changed')])).toMatchObject({ checked: RUNS, replays: RUNS, ok: true });
  });

  it('catches the same change made without it, naming each run that would diverge and where', async () => {
    const report =
      backend === 'SQLite'
        ? await replay(db, 'careless', '--json').then(({ code, report }) => {
            expect(code).toBe(1);
            return report;
          })
        : await check(db, [orderWorkflow('careless')]);
    expect(report).toMatchObject({ checked: RUNS, replays: PAST_CHARGE, diverges: COMPLETED + PAST_EMAIL, noCode: 0, ok: false });
    expect(report.problems).toHaveLength(COMPLETED + PAST_EMAIL);
    expect(report.problems[0]).toEqual({
      runId: 'done-000',
      workflow: 'order',
      workflowVersion: '1',
      status: 'completed',
      outcome: 'diverges',
      divergence: {
        seq: 1,
        journal: 'step "email"',
        code: 'step "fraud-check"',
        message: expect.stringContaining('replay diverged at call #1'),
      },
    });
    const active = await check(db, [orderWorkflow('careless')], { runs: 'active' });
    expect(active).toMatchObject({ checked: PAST_EMAIL + PAST_CHARGE, diverges: PAST_EMAIL });
  });

  it('a new version registered beside the old passes; without the old one, the runs not ended have no code', async () => {
    expect(await check(db, [orderWorkflow('v1'), orderWorkflow('v2')])).toMatchObject({ checked: RUNS, replays: RUNS, ok: true });
    const report = await check(db, [orderWorkflow('v2')]);
    expect(report).toMatchObject({ checked: PAST_EMAIL + PAST_CHARGE, replays: 0, noCode: PAST_EMAIL + PAST_CHARGE, skipped: COMPLETED });
    expect(report.problems[0]).toMatchObject({
      runId: 'past-charge-000',
      outcome: 'no-code',
      error: { code: 'WORKFLOW_VERSION_NOT_FOUND' },
    });
  });

  it('checks a sample of the runs selected, and reports progress run by run', async () => {
    const progress: number[] = [];
    const report = await check(db, [orderWorkflow('careless')], {
      runs: 'completed',
      sample: 20,
      onProgress: ({ done, total }) => progress.push(total - done),
    });
    expect(report).toMatchObject({ checked: 20, diverges: 20 });
    expect(progress).toEqual(Array.from({ length: 20 }, (_, i) => 19 - i));
  });
});

describe('rewind export, then rewind replay of the file', () => {
  it('turns one stored run into a file that is checked like the store', async () => {
    const dir = tempDir('rewind-export-');
    const db = `sqlite:${join(dir, 'rewind.db')}`;
    const store = await openStore(db);
    await expect(
      createRuntime({ store: crashAfter(store, completed('email')) }).start(orderWorkflow('v1'), { n: 7 }, { runId: 'order-7' }),
    ).rejects.toBeInstanceOf(SimulatedCrash);
    const events = await store.read('run-order-7');
    await store.close();

    const file = join(dir, 'order-7.json');
    const exported = await runCli(['export', 'order-7', '--db', db, '--out', file]);
    expect(exported.code, exported.stderr).toBe(0);
    const run = readExportedRun(file);
    expect(run).toMatchObject({ format: 'rewind.run', formatVersion: 1, runId: 'order-7' });
    expect(run.events).toEqual(events);

    const careless = await runCli(['replay', file, '--workflows', fixture('careless')]);
    expect(careless.code).toBe(1);
    expect(careless.stdout).toBe(
      [
        '✗ order-7  order@1  running',
        '    at call #1 the journal holds step "email", the code asks for step "fraud-check"',
        '',
        `✗ 1 run replayed against ${fixture('careless')}: 0 replay, 1 diverge`,
        'what may change under running runs, and how: "Changing code safely" in the README (node_modules/rewind-runtime/README.md)',
        '',
      ].join('\n'),
    );

    expect(() => readExportedRun(join(dir, 'rewind.db'))).toThrow(/is not JSON/);
    expect(() => parseExportedRun({ ...run, events: run.events.slice(1) }, 'order-7.json')).toThrow(
      expect.objectContaining({
        code: 'VALIDATION',
        issues: expect.arrayContaining(['events.0.type: a run starts with RunStarted, got StepStarted']),
      }),
    );
  });
});
