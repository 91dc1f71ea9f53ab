import { describe, expect, it, vi } from 'vitest';
import { ValidationError } from '../../src/events/errors.js';
import { createRuntime, defineWorkflow, type RunContext, type Workflow } from '../../src/runtime/index.js';
import { fails, testWorkflow } from '../../src/testing/index.js';
import { makeStore } from './helpers.js';

/** A workflow whose code is given per test; every step function call lands in `ran`. */
const code = (ran: string[], run: (ctx: RunContext, step: (name: string) => Promise<unknown>) => Promise<unknown>, extra = {}) =>
  defineWorkflow({
    name: 'w',
    initialState: null,
    apply: (s) => s,
    ...extra,
    run: (ctx) =>
      run(ctx, (name) =>
        ctx.step(name, () => {
          ran.push(name);
          if (name.startsWith('bad')) throw new Error(`${name} failed`);
          return name;
        }),
      ),
  });

/** Runs `before` to its end in a fresh store, then checks the log against `after`. */
async function check(before: Workflow, after: Workflow) {
  const store = await makeStore();
  await createRuntime({ store }).start(before, null, { runId: 'r' });
  return createRuntime({ store, workflows: [after] }).replayCheck();
}

describe('the replay check', () => {
  it('a completed run whose code now asks for more diverges at the end of run()', async () => {
    const ran: string[] = [];
    const report = await check(
      code(ran, async (_ctx, step) => step('a')),
      code(ran, async (_ctx, step) => {
        await step('a');
        return step('b');
      }),
    );
    expect(report.problems[0]).toMatchObject({
      outcome: 'diverges',
      divergence: { seq: 1, journal: 'the end of run()', code: 'step "b"' },
    });
    expect(ran).toEqual(['a']);
  });

  it('code that now ends before the journal does diverges too', async () => {
    const report = await check(
      code([], async (ctx, step) => {
        await step('a');
        await ctx.now();
      }),
      code([], async (_ctx, step) => step('a')),
    );
    expect(report.problems[0]).toMatchObject({ divergence: { seq: 1, journal: 'ctx.now()', code: 'the end of run()' } });
  });

  it('a run that went back and took another path after a rollback replays; so does one still rolling back', async () => {
    const ran: string[] = [];
    const retrying = code(
      ran,
      async (ctx, step) => {
        await ctx.checkpoint('c');
        await step('a');
        return step(ctx.rollbacks.length === 0 ? 'bad' : 'b');
      },
      { onFailure: { rollbackTo: 'c', after: 'retry' } },
    );
    const store = await makeStore();
    await createRuntime({ store }).start(retrying, null, { runId: 'retried' });
    // Its compensation fails: the rollback waits for an operator, its window still in the effective history.
    const blocked = testWorkflow(retrying, { store, compensations: { a: fails('refunds down') } });
    expect(await blocked.start(null, { runId: 'blocked' })).toMatchObject({ status: 'needs_attention' });
    ran.length = 0;
    const report = await createRuntime({ store, workflows: [retrying] }).replayCheck();
    expect(report).toMatchObject({ checked: 2, replays: 2, ok: true });
    expect(ran).toEqual([]);
  });

  it('a run asleep is checked without waiting, and a run not ended may go on past its journal', async () => {
    const store = await makeStore();
    const sleeper = code([], async (ctx, step) => {
      await step('a');
      await ctx.sleep(3_600_000);
      return step('b');
    });
    const runtime = createRuntime({ store, workflows: [sleeper] });
    await runtime.start(sleeper, null, { runId: 'asleep', detach: true });
    await expect.poll(async () => (await store.read('run-asleep')).length).toBe(4);
    const more = code([], async (ctx, step) => {
      await step('a');
      await ctx.sleep(3_600_000);
      await step('b');
      return step('c');
    });
    expect(await createRuntime({ store, workflows: [more] }).replayCheck()).toMatchObject({ checked: 1, replays: 1 });
    await runtime.cancel('asleep');
  });

  it('selects runs by status and workflow, and refuses options it does not know, reading nothing', async () => {
    const store = await makeStore();
    const ok = code([], async (_ctx, step) => step('a'));
    const runtime = createRuntime({ store, workflows: [ok] });
    await runtime.start(ok, null, { runId: 'done' });
    await runtime.start(
      code([], async (_ctx, step) => step('bad')),
      null,
      { runId: 'failed' },
    );
    expect(await runtime.replayCheck({ runs: 'failed' })).toMatchObject({ checked: 1 });
    expect(await runtime.replayCheck({ runs: 'active' })).toMatchObject({ checked: 0, ok: true });
    expect(await runtime.replayCheck({ workflow: 'other' })).toMatchObject({ checked: 0 });
    const bad = runtime.replayCheck({ runs: 'finished' as never, sample: 0 });
    await expect(bad).rejects.toBeInstanceOf(ValidationError);
    await expect(bad).rejects.toMatchObject({
      issues: [
        "runs must be 'all', 'active' or a status (running, waiting, completed, failed, rolling_back, rolled_back, needs_attention, cancelled)",
        'sample must be a positive integer',
      ],
    });
  });
  it('selects from the runs index: checking one workflow reads that workflow’s runs only, and counts them as the total', async () => {
    const store = await makeStore();
    const other = defineWorkflow<null, null>({ name: 'other', initialState: null, apply: (s) => s, run: async () => null });
    const mine = code([], async (_ctx, step) => step('a'));
    const runtime = createRuntime({ store, workflows: [other, mine] });
    for (let i = 0; i < 30; i++) await runtime.start(other, null, { runId: `o${i}` });
    for (let i = 0; i < 3; i++) await runtime.start(mine, null, { runId: `m${i}` });
    const read = vi.spyOn(store, 'read');
    const totals: number[] = [];
    const report = await runtime.replayCheck({ workflow: 'w', onProgress: ({ total }) => totals.push(total) });
    expect(report).toMatchObject({ checked: 3, replays: 3, ok: true });
    expect(new Set(read.mock.calls.map(([streamId]) => streamId))).toEqual(new Set(['run-m0', 'run-m1', 'run-m2']));
    expect(totals).toEqual([3, 3, 3]);
  });
});
