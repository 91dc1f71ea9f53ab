import { describe, expect, it } from 'vitest';
import {
  createRuntime,
  createWorker,
  defineWorkflow,
  MemoryRunQueue,
  NonDeterminismError,
  type RunContext,
  RunEvents,
  type WorkerEvent,
  WorkflowVersionNotFoundError,
} from '../../src/runtime/index.js';
import { crashAfter, makeStore, SimulatedCrash, typesOf } from './helpers.js';

const completedStep = (name: string) => (e: { type: string; data: unknown }) =>
  e.type === RunEvents.StepCompleted && (e.data as { name: string }).name === name;
/** A crash once the step's start is written, before its function runs. */
const startedStep = (name: string) => (e: { type: string; data: unknown }) =>
  e.type === RunEvents.StepStarted && (e.data as { name: string }).name === name;

/** An order workflow whose code is given per test; `ran` lists the steps whose functions ran. */
function order(ran: string[], run: (ctx: RunContext, step: (name: string) => Promise<string>) => Promise<unknown>, version = '1') {
  return defineWorkflow({
    name: 'order',
    version,
    initialState: null,
    apply: (s) => s,
    run: (ctx) =>
      run(ctx, (name) =>
        ctx.step(name, () => {
          ran.push(name);
          return `${name}-done`;
        }),
      ),
  });
}

const original = (ran: string[]) =>
  order(ran, async (_ctx, step) => {
    await step('charge');
    await step('email');
    return step('ship');
  });

/** The same workflow after a change: a fraud check between the charge and the email, for runs that reach it under this code. */
const withFraudCheck = (ran: string[]) =>
  order(ran, async (ctx, step) => {
    await step('charge');
    if (await ctx.changed('fraud-check')) await step('fraud-check');
    await step('email');
    return step('ship');
  });

describe('ctx.changed: a change inside one version', () => {
  it('an old run resumed on the new code finishes on the old path, and a new run takes the new path', async () => {
    const store = await makeStore();
    const ran: string[] = [];
    const crashing = crashAfter(store, completedStep('email'));
    await expect(createRuntime({ store: crashing }).start(original(ran), null, { runId: 'old' })).rejects.toBeInstanceOf(SimulatedCrash);
    expect(ran).toEqual(['charge', 'email']);

    const runtime = createRuntime({ store, workflows: [withFraudCheck(ran)] });
    const old = await runtime.resume('old');
    expect(old.status).toBe('completed');
    expect(ran).toEqual(['charge', 'email', 'ship']);
    expect(await typesOf(store, 'old')).not.toContain(RunEvents.ChangeRecorded);

    ran.length = 0;
    const fresh = await runtime.start('order', null, { runId: 'new' });
    expect(fresh.status).toBe('completed');
    expect(ran).toEqual(['charge', 'fraud-check', 'email', 'ship']);
    const change = (await store.read('run-new')).find((e) => e.type === RunEvents.ChangeRecorded);
    expect(change?.data).toEqual({ seq: 1, change: 'fraud-check' });

    // Replayed again (a resume of a completed run drives nothing), each keeps its path.
    ran.length = 0;
    expect((await createRuntime({ store, workflows: [withFraudCheck(ran)] }).replayCheck()).ok).toBe(true);
    expect(ran).toEqual([]);
  });

  it('a run that had not reached the change yet takes the new path', async () => {
    const store = await makeStore();
    const ran: string[] = [];
    const crashing = crashAfter(store, startedStep('charge'));
    await expect(createRuntime({ store: crashing }).start(original(ran), null, { runId: 'r' })).rejects.toBeInstanceOf(SimulatedCrash);
    const info = await createRuntime({ store, workflows: [withFraudCheck(ran)] }).resume('r');
    expect(info.status).toBe('completed');
    expect(ran).toEqual(['charge', 'fraud-check', 'email', 'ship']);
  });

  it('gives one answer per run and change, however often it is asked, journaled once', async () => {
    const store = await makeStore();
    const answers: boolean[] = [];
    const wf = order([], async (ctx, step) => {
      answers.push(await ctx.changed('x'));
      await step('a');
      answers.push(await ctx.changed('x'));
      answers.push(await ctx.changed('y'));
      return answers;
    });
    const info = await createRuntime({ store }).start(wf, null, { runId: 'twice' });
    expect(info.output).toEqual([true, true, true]);
    const changes = (await store.read('run-twice')).filter((e) => e.type === RunEvents.ChangeRecorded).map((e) => e.data);
    expect(changes).toEqual([
      { seq: 0, change: 'x' },
      { seq: 2, change: 'y' },
    ]);
  });

  it('an old run keeps its old answer past the end of its journal, so it never switches path half-way', async () => {
    const store = await makeStore();
    const ran: string[] = [];
    const crashing = crashAfter(store, startedStep('email'));
    await expect(createRuntime({ store: crashing }).start(original(ran), null, { runId: 'old' })).rejects.toBeInstanceOf(SimulatedCrash);
    // The new code asks the same change again after the journal's end: the answer stays false.
    const asking = order(ran, async (ctx, step) => {
      await step('charge');
      const first = await ctx.changed('v2');
      await step('email');
      const again = await ctx.changed('v2');
      return { first, again };
    });
    const info = await createRuntime({ store, workflows: [asking] }).resume('old');
    expect(info.output).toEqual({ first: false, again: false });
  });

  it('once every run that could take the old path has ended, the call can go: its entries are passed over', async () => {
    const store = await makeStore();
    const ran: string[] = [];
    const crashing = crashAfter(store, completedStep('fraud-check'));
    await expect(createRuntime({ store: crashing }).start(withFraudCheck(ran), null, { runId: 'r' })).rejects.toBeInstanceOf(
      SimulatedCrash,
    );
    const retired = order(ran, async (_ctx, step) => {
      await step('charge');
      await step('fraud-check');
      await step('email');
      return step('ship');
    });
    const info = await createRuntime({ store, workflows: [retired] }).resume('r');
    expect(info.status).toBe('completed');
    expect(ran).toEqual(['charge', 'fraud-check', 'email', 'ship']);
  });

  it('code that changes a path without asking stops the run with a NonDeterminismError that points to the guide', async () => {
    const store = await makeStore();
    const ran: string[] = [];
    const crashing = crashAfter(store, completedStep('email'));
    await expect(createRuntime({ store: crashing }).start(original(ran), null, { runId: 'r' })).rejects.toBeInstanceOf(SimulatedCrash);
    const careless = order(ran, async (_ctx, step) => {
      await step('charge');
      await step('fraud-check');
      await step('email');
      return step('ship');
    });
    const error = await createRuntime({ store, workflows: [careless] })
      .resume('r')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NonDeterminismError);
    expect(error).toMatchObject({ seq: 1, expected: 'step "email"', actual: 'step "fraud-check"' });
    expect((error as NonDeterminismError).hint).toContain(
      'see "Changing code safely" in the README (node_modules/rewind-runtime/README.md)',
    );
  });

  it('refuses a change id that is not a short name, writing nothing', async () => {
    const store = await makeStore();
    const wf = order([], async (ctx) => ctx.changed('has spaces'));
    const info = await createRuntime({ store }).start(wf, null, { runId: 'bad' });
    expect(info.status).toBe('failed');
    expect(info.error).toMatchObject({ name: 'ValidationError', code: 'VALIDATION' });
    expect(await typesOf(store, 'bad')).toEqual([RunEvents.RunStarted, RunEvents.RunFailed]);
  });
});

describe('several versions of one workflow at once', () => {
  const v1 = (ran: string[]) =>
    order(
      ran,
      async (_ctx, step) => {
        await step('v1:a');
        return step('v1:b');
      },
      '1',
    );
  const v2 = (ran: string[]) =>
    order(
      ran,
      async (_ctx, step) => {
        await step('v2:a');
        await step('v2:b');
        return step('v2:c');
      },
      '2',
    );

  it('each run goes on under the version it started under, both driven at once', async () => {
    const store = await makeStore();
    const ran: string[] = [];
    for (const [wf, id] of [
      [v1(ran), 'one'],
      [v2(ran), 'two'],
    ] as const) {
      const crashing = crashAfter(store, (e) => e.type === RunEvents.StepCompleted);
      await expect(createRuntime({ store: crashing }).start(wf, null, { runId: id })).rejects.toBeInstanceOf(SimulatedCrash);
    }
    expect(ran).toEqual(['v1:a', 'v2:a']);

    const runtime = createRuntime({ store, workflows: [v1(ran), v2(ran)] });
    const [one, two] = await Promise.all([runtime.resume('one'), runtime.resume('two')]);
    expect([one.workflowVersion, one.status, one.output]).toEqual(['1', 'completed', 'v1:b-done']);
    expect([two.workflowVersion, two.status, two.output]).toEqual(['2', 'completed', 'v2:c-done']);
    expect(ran.filter((s) => s.startsWith('v1'))).toEqual(['v1:a', 'v1:b']);
    expect(ran.filter((s) => s.startsWith('v2'))).toEqual(['v2:a', 'v2:b', 'v2:c']);
    expect((await runtime.list()).map((r) => [r.runId, r.workflowVersion])).toEqual([
      ['one', '1'],
      ['two', '2'],
    ]);
  });

  it('a run started by name starts under the version registered last', async () => {
    const store = await makeStore();
    const ran: string[] = [];
    const runtime = createRuntime({ store, workflows: [v1(ran), v2(ran)] });
    expect((await runtime.start('order', null, { runId: 'r' })).workflowVersion).toBe('2');
    runtime.register(v1(ran));
    expect((await runtime.start('order', null, { runId: 's' })).workflowVersion).toBe('1');
  });

  it('a run whose version is no longer registered is reported with a typed error, not driven, and nothing is written', async () => {
    const store = await makeStore();
    const ran: string[] = [];
    const crashing = crashAfter(store, (e) => e.type === RunEvents.StepCompleted);
    await expect(createRuntime({ store: crashing }).start(v1(ran), null, { runId: 'old' })).rejects.toBeInstanceOf(SimulatedCrash);
    const runtime = createRuntime({ store, workflows: [v2(ran)] });
    const error = await runtime.resume('old').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowVersionNotFoundError);
    expect(error).toMatchObject({ code: 'WORKFLOW_VERSION_NOT_FOUND', workflow: 'order', version: '1', registered: ['2'] });
    // The crash came with the first step's completion, written with the second step's start.
    expect(await typesOf(store, 'old')).toEqual([
      RunEvents.RunStarted,
      RunEvents.StepStarted,
      RunEvents.StepCompleted,
      RunEvents.StepStarted,
    ]);
    expect(await runtime.get('old')).toMatchObject({ workflowVersion: '1', status: 'running' });
    expect(ran).toEqual(['v1:a']);

    const report = await runtime.replayCheck();
    expect(report).toMatchObject({ ok: false, checked: 1, noCode: 1, diverges: 0 });
    expect(report.problems[0]).toMatchObject({ runId: 'old', outcome: 'no-code', error: { code: 'WORKFLOW_VERSION_NOT_FOUND' } });
  });

  it('a worker without the version reports the run and puts it back for a worker that has it', async () => {
    const store = await makeStore();
    const ran: string[] = [];
    const queue = new MemoryRunQueue();
    await createRuntime({ store, queue }).start(v1(ran), null, { runId: 'old', detach: true });
    const events: WorkerEvent[] = [];
    const worker = createWorker({ store, queue, workflows: [v2(ran)], pollMs: 10, onEvent: (e) => events.push(e) });
    await worker.start();
    await expect.poll(() => events.find((e) => e.type === 'requeued'), { timeout: 5_000 }).toBeDefined();
    await worker.stop();
    expect(events.find((e) => e.type === 'error')).toMatchObject({ runId: 'old', error: { code: 'WORKFLOW_VERSION_NOT_FOUND' } });
    expect(ran).toEqual([]);

    const other = createWorker({ store, queue, workflows: [v1(ran), v2(ran)], pollMs: 10 });
    await queue.enqueue('old', 'order', 'start');
    await other.start();
    await expect.poll(async () => (await createRuntime({ store }).get('old')).status, { timeout: 5_000 }).toBe('completed');
    await other.stop();
    expect(ran).toEqual(['v1:a', 'v1:b']);
  });

  it('a fork under another version goes on under that version', async () => {
    const store = await makeStore();
    const ran: string[] = [];
    const runtime = createRuntime({ store, workflows: [v1(ran)] });
    await runtime.start('order', null, { runId: 'r' });
    const fork = await runtime.fork('r', { at: 1, workflow: v2(ran) });
    expect(fork).toMatchObject({ workflowVersion: '2', status: 'completed', output: 'v2:c-done' });
    const same = await runtime.fork('r', { at: 1 });
    expect(same).toMatchObject({ workflowVersion: '1', status: 'completed', output: 'v1:b-done' });
  });
});
