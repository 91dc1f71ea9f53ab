import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineWorkflow, NonDeterminismError, RunEvents, ValidationError } from '../../src/index.js';
import {
  assertReplays,
  FakeClock,
  fails,
  hangs,
  nextActionOf,
  replay,
  sequence,
  stepCompleted,
  stepStarted,
  testWorkflow,
} from '../../src/testing/index.js';

// The order workflow of the README: charge, then ship; a failure rolls back to "ready" and fails.
const order = defineWorkflow({
  name: 'order',
  input: z.object({ amount: z.number().positive() }),
  initialState: { payments: 0 },
  apply: (state, event) => (event.type === 'Paid' ? { payments: state.payments + 1 } : state),
  onFailure: { rollbackTo: 'latest', after: 'fail' },
  run: async (ctx, input) => {
    await ctx.checkpoint('ready');
    const charge = await ctx.step('charge', (): { id: string } => ({ id: `real-${input.amount}` }), { compensate: () => {} });
    await ctx.emit({ type: 'Paid', data: { charge: charge.id } });
    return ctx.step('ship', (): string => 'shipped-for-real', { timeoutMs: 3_600_000 });
  },
});

describe('testWorkflow: given stubbed steps, when the run runs, then…', () => {
  it('its status, state, emitted events, steps and compensations, in one comparison', async () => {
    const t = testWorkflow(order, { steps: { charge: { id: 'ch_1' }, ship: fails('out of stock') } });
    const run = await t.start({ amount: 90 });
    expect(run).toMatchObject({
      status: 'failed',
      error: { message: 'out of stock' },
      state: { payments: 0 },
      emitted: [],
      steps: [],
      compensated: ['charge'],
      rollbacks: [{ label: 'ready', reason: 'out of stock' }],
    });
    expect(run.types).toEqual([
      'RunStarted',
      'Checkpoint',
      'StepStarted',
      'StepCompleted',
      'Paid',
      'StepStarted',
      'StepFailed',
      'RollbackRequested',
      'CompensationStarted',
      'CompensationCompleted',
      'RolledBack',
      'RunFailed',
    ]);
    expect(t.calls.map((c) => `${c.kind} ${c.step}`)).toEqual(['step charge', 'step ship', 'compensate charge']);
  });

  it('steps not stubbed run their own code', async () => {
    const run = await testWorkflow(order).start({ amount: 5 });
    expect(run).toMatchObject({ status: 'completed', output: 'shipped-for-real', state: { payments: 1 }, steps: ['charge', 'ship'] });
    expect(run.emitted).toEqual([{ type: 'Paid', data: { charge: 'real-5' } }]);
  });

  it('a one-hour step timeout takes no wall time: the fake clock skips to it', { timeout: 5_000 }, async () => {
    const run = await testWorkflow(order, { steps: { ship: hangs() } }).start({ amount: 1 });
    expect(run).toMatchObject({ status: 'failed', error: { code: 'STEP_TIMEOUT' }, compensated: ['charge'], elapsedMs: 3_600_000 });
    expect(run.rollbacks[0]?.trigger).toMatchObject({ kind: 'timeout', step: 'ship' });
  });

  it('retry backoff and ctx.sleep pass in fake time too', { timeout: 5_000 }, async () => {
    const patient = defineWorkflow({
      name: 'patient',
      initialState: null,
      apply: (s) => s,
      run: async (ctx) => {
        await ctx.sleep(24 * 3_600_000);
        return ctx.step('flaky', () => 'never', { retry: { attempts: 3, initialDelayMs: 60_000, maxDelayMs: 600_000 } });
      },
    });
    const t = testWorkflow(patient, { steps: { flaky: sequence(fails('503'), fails('503'), 'ok') } });
    const run = await t.start(null);
    expect(run).toMatchObject({ status: 'completed', output: 'ok' });
    expect(t.calls.map((c) => c.attempt)).toEqual([1, 2, 3]);
    // A day asleep, then two backoffs: 30-60 s, then 60-120 s (half fixed, half jitter).
    expect(run.elapsedMs).toBeGreaterThanOrEqual(86_400_000 + 90_000);
    expect(run.elapsedMs).toBeLessThanOrEqual(86_400_000 + 180_000);
  });
});

describe('testWorkflow: when it resumes, rolls back, or an operator acts', () => {
  it('a run stopped after an append resumes without running its completed steps again', async () => {
    const t = testWorkflow(order, { steps: { ship: 'parcel-1' } });
    const crashed = await t.start({ amount: 3 }, { runId: 'o1', crashAfter: stepCompleted('charge') });
    expect(crashed).toMatchObject({ status: 'running', steps: ['charge'] });
    const run = await t.resume('o1');
    expect(run).toMatchObject({ status: 'completed', output: 'parcel-1', steps: ['charge', 'ship'] });
    expect(t.calls.map((c) => c.step)).toEqual(['charge', 'ship']);
  });

  it('an operator rollback compensates; a compensation that keeps failing waits for an operator', async () => {
    const t = testWorkflow(order, {
      steps: { ship: 'parcel' },
      compensations: { charge: sequence(fails('refunds down'), fails('refunds down'), fails('refunds down'), null) },
    });
    await t.start({ amount: 3 }, { runId: 'o2' });
    const blocked = await t.rollback('o2', { to: 'ready', reason: 'customer asked' });
    expect(blocked).toMatchObject({ status: 'needs_attention', attention: { step: 'charge', error: { message: 'refunds down' } } });
    expect(await t.nextAction('o2')).toEqual({ kind: 'rest', why: 'attention' });
    const retried = await t.retryCompensation('o2', 'refunds are back');
    expect(retried).toMatchObject({ status: 'rolled_back', compensated: ['charge'], state: { payments: 0 }, emitted: [] });
    expect(t.calls.filter((c) => c.kind === 'compensate').map((c) => c.attempt)).toEqual([1, 2, 3, 1]);
  });

  it('act() carries out any other request through the runtime: the place a signal goes', async () => {
    const t = testWorkflow(order, { steps: { ship: hangs() } });
    const run = await t.start({ amount: 3 }, { runId: 'o3', crashAfter: stepCompleted('charge') });
    const cancelled = await t.act(run.runId, (runtime) => runtime.cancel(run.runId, 'changed my mind'));
    expect(cancelled).toMatchObject({ status: 'cancelled', types: expect.arrayContaining([RunEvents.RunCancelled]) });
  });
});

describe('recorded runs as regression tests', () => {
  const shipping = (withLabel: 'changed' | 'careless' | 'none') =>
    defineWorkflow({
      name: 'shipping',
      initialState: null,
      apply: (s) => s,
      run: async (ctx) => {
        await ctx.step('pack', () => 'packed');
        if (withLabel === 'changed' && (await ctx.changed('label'))) await ctx.step('label', () => 'labelled');
        if (withLabel === 'careless') await ctx.step('label', () => 'labelled');
        return ctx.step('send', () => 'sent');
      },
    });

  it('replay() tells whether new code follows a recorded run, and assertReplays() fails where it does not', async () => {
    const recorded = (await testWorkflow(shipping('none')).start(null, { runId: 's1' })).events;
    expect(await replay(recorded, shipping('changed'))).toMatchObject({ runId: 's1', outcome: 'replays' });
    await assertReplays(recorded, shipping('changed'));
    expect(await replay(recorded, shipping('careless'))).toMatchObject({
      outcome: 'diverges',
      divergence: { seq: 1, journal: 'step "send"', code: 'step "label"' },
    });
    await expect(assertReplays(recorded, shipping('careless'))).rejects.toBeInstanceOf(NonDeterminismError);
    await expect(assertReplays(recorded, { ...shipping('none'), version: '2' })).rejects.toMatchObject({
      code: 'WORKFLOW_VERSION_NOT_FOUND',
    });
  });

  it('given a recorded run stopped half-way, the new code resumes it on its old path', async () => {
    // It stopped once "send" had started: past the point where the new code asks.
    const { events } = await testWorkflow(shipping('none')).start(null, { runId: 's2', crashAfter: stepStarted('send') });
    const t = testWorkflow(shipping('changed'), { recorded: events });
    expect(await t.resume('s2')).toMatchObject({ status: 'completed', steps: ['pack', 'send'] });
    expect(t.calls.map((c) => c.step)).toEqual(['send']);
    expect(await testWorkflow(shipping('changed')).start(null)).toMatchObject({ steps: ['pack', 'label', 'send'] });
  });

  it('a recorded run that is not whole is refused with what is wrong', async () => {
    const recorded = (await testWorkflow(shipping('none')).start(null, { runId: 's3' })).events;
    const t = testWorkflow(shipping('none'), { recorded: recorded.slice(1) });
    await expect(t.read('s3')).rejects.toBeInstanceOf(ValidationError);
    await expect(replay('/nonexistent/run.json', shipping('none'))).rejects.toMatchObject({
      code: 'VALIDATION',
      message: expect.stringContaining('ENOENT'),
    });
  });
});

describe('nextActionOf: given events, the next action', () => {
  it('is what the rollback protocol does next', async () => {
    const t = testWorkflow(order, { steps: { ship: fails('no') } });
    const run = await t.start({ amount: 2 });
    const requested = run.events.findIndex((e) => e.type === RunEvents.RollbackRequested);
    expect(nextActionOf(run.events.slice(0, requested + 1), { workflow: order })).toMatchObject({
      kind: 'compensate',
      step: { name: 'charge' },
      attempt: 1,
    });
    expect(nextActionOf(run.events)).toEqual({ kind: 'rest', why: 'failed' });
  });
});

describe('FakeClock', () => {
  it('moves only when told, without autoAdvance, waking waits in order; an aborted wait is dropped', async () => {
    const clock = new FakeClock({ now: 0, autoAdvance: false });
    const woke: string[] = [];
    const cancel = new AbortController();
    void clock.sleep(200).then(() => woke.push('b'));
    void clock.sleep(100).then(() => woke.push('a'));
    const dropped = clock.sleep(150, cancel.signal).catch(() => woke.push('aborted'));
    cancel.abort();
    await dropped;
    await clock.advance(150);
    expect([woke, clock.now(), clock.pending]).toEqual([['aborted', 'a'], 150, 1]);
    await clock.advance(50);
    expect([woke, clock.elapsed, clock.pending]).toEqual([['aborted', 'a', 'b'], 200, 0]);
  });
});
