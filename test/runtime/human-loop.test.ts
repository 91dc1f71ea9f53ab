import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  createRuntime,
  defineWorkflow,
  type Failure,
  IrreversibleStepError,
  isRunEvent,
  NonRetryableError,
  RunEvents,
} from '../../src/runtime/index.js';
import { fastClock, makeStore, typesOf } from './helpers.js';

// Humans and other systems in the loop: durable waits and signals, approvals,
// policies that weigh the failure, irreversible steps, guardrails.

describe('waits and signals', () => {
  const order = defineWorkflow({
    name: 'await-payment',
    initialState: null,
    apply: (s: null) => s,
    run: async (ctx) => {
      const first = await ctx.waitFor<{ paid: number }>('payment', { schema: z.object({ paid: z.number() }) });
      const second = await ctx.waitFor<string>('shipped');
      return { paid: first.paid, shipped: second };
    },
  });

  it('parks a run until its signal, keeps a signal sent early, and records who sent each', async () => {
    const store = await makeStore();
    const runtime = createRuntime({ store, workflows: [order] });
    const parked = await runtime.start(order, null, { runId: 'w1' });
    expect(parked.status).toBe('waiting');
    expect(parked.waiting).toEqual({ name: 'payment' });

    // A payload that fails the wait's schema is used up; the run goes on waiting.
    const wrong = await runtime.signal('w1', 'payment', { paid: 'lots' }, { actor: 'bank-webhook' });
    expect(wrong.status).toBe('waiting');
    // 'shipped' comes before the run waits for it: kept in the mailbox.
    expect((await runtime.signal('w1', 'shipped', 'DHL-42', { actor: 'warehouse' })).status).toBe('waiting');
    const done = await runtime.signal('w1', 'payment', { paid: 90 }, { actor: 'bank-webhook' });
    expect(done.status).toBe('completed');
    expect(done.output).toEqual({ paid: 90, shipped: 'DHL-42' });

    const received = (await store.read('run-w1')).filter((e) => isRunEvent(e, RunEvents.SignalReceived)).map((e) => e.data);
    expect(received).toMatchObject([
      {
        name: 'payment',
        payload: { paid: 'lots' },
        actor: 'bank-webhook',
        invalid: ['paid: Invalid input: expected number, received string'],
      },
      { name: 'payment', payload: { paid: 90 }, actor: 'bank-webhook' },
      { name: 'shipped', payload: 'DHL-42', actor: 'warehouse' },
    ]);
    // A finished run takes no more signals; nothing is written.
    const version = await store.streamVersion('signals-w1');
    await expect(runtime.signal('w1', 'payment', { paid: 1 })).rejects.toMatchObject({ code: 'RUN_STATE' });
    expect(await store.streamVersion('signals-w1')).toBe(version);
    // Bad input: a typed error, nothing written.
    await expect(runtime.signal('w1', '', 1)).rejects.toMatchObject({ code: 'VALIDATION' });
    await expect(runtime.signal('nobody', 'x', 1)).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });
  });

  it('a resumed process picks the wait up from the log; each signal answers one wait, once', async () => {
    const store = await makeStore();
    await createRuntime({ store, workflows: [order] }).start(order, null, { runId: 'w2' });
    await createRuntime({ store, workflows: [order] }).signal('w2', 'payment', { paid: 5 }, { id: 'pay-1' });
    // The same signal id again is the same signal: it does not answer the second wait.
    const again = await createRuntime({ store, workflows: [order] }).signal('w2', 'payment', { paid: 5 }, { id: 'pay-1' });
    expect(again.waiting).toEqual({ name: 'shipped' });
    expect((await createRuntime({ store, workflows: [order] }).signal('w2', 'shipped', 'UPS')).output).toEqual({ paid: 5, shipped: 'UPS' });
  });

  it('a timeout is a trigger: an hour-long wait that times out rolls back under the policy (a fake clock, no wall time)', async () => {
    const store = await makeStore();
    const clock = fastClock();
    const undone: string[] = [];
    const wf = defineWorkflow({
      name: 'quote',
      initialState: null,
      apply: (s: null) => s,
      onFailure: (f: Failure) => (f.kind === 'timeout' ? { rollbackTo: 'asked' } : 'fail'),
      run: async (ctx) => {
        await ctx.checkpoint('asked');
        await ctx.step('hold-seat', () => 'seat-7', { compensate: (seat) => void undone.push(seat) });
        if (ctx.rollbacks.length > 0) return 'gave up on the quote';
        return ctx.waitFor('quote', { timeoutMs: 3_600_000 });
      },
    });
    const runtime = createRuntime({ store, workflows: [wf], clock });
    const parked = await runtime.start(wf, null, { runId: 't1' });
    expect(parked.waiting).toEqual({ name: 'quote', timeoutAt: clock.now() + 3_600_000 });
    clock.advance(3_600_001);
    const info = await runtime.resume('t1');
    expect(info.status).toBe('completed');
    expect(info.output).toBe('gave up on the quote');
    expect(undone).toEqual(['seat-7']);
    expect(info.rollbacks[0]).toMatchObject({ trigger: { kind: 'timeout', step: 'quote', error: { name: 'WaitTimeoutError' } } });
    await runtime.close();
  });
});

describe('a wait beside another branch', () => {
  // The wait parks the run while a step of another branch (Promise.all) is still running and ends after it.
  const clock = fastClock();
  let packed = 0;
  const order = defineWorkflow({
    name: 'pack-and-pay',
    initialState: null,
    apply: (s: null) => s,
    run: async (ctx) => {
      await ctx.step('reserve', () => 'R-1');
      return Promise.all([
        ctx.waitFor<string>('paid', { timeoutMs: 60_000 }),
        ctx.step('pack', async () => {
          await new Promise((r) => setTimeout(r, 20));
          return `box-${++packed}`;
        }),
      ]);
    },
  });

  it('lists the parked run as waiting: the wait is its last event, after the other branch recorded its end', async () => {
    const store = await makeStore();
    const runtime = createRuntime({ store, workflows: [order], clock });
    const parked = await runtime.start(order, null, { runId: 'p1' });
    expect(parked).toMatchObject({ status: 'waiting', waiting: { name: 'paid', timeoutAt: clock.now() + 60_000 } });
    expect((await runtime.list()).map((r) => [r.runId, r.status])).toEqual([['p1', 'waiting']]);
    expect((await typesOf(store, 'p1')).slice(-3)).toEqual([RunEvents.StepStarted, RunEvents.StepCompleted, RunEvents.WaitStarted]);

    // The signal wakes it; the packing it recorded is not done again.
    const done = await runtime.signal('p1', 'paid', 'PAY-1');
    expect(done).toMatchObject({ status: 'completed', output: ['PAY-1', 'box-1'] });
    expect(packed).toBe(1);
    await runtime.close();
  });

  it('a step of the other branch that fails after the park triggers its policy at once, instead of waiting for the signal', async () => {
    const store = await makeStore();
    const undone: string[] = [];
    const failing = defineWorkflow({
      name: 'hold-and-charge',
      initialState: null,
      apply: (s: null) => s,
      onFailure: 'compensate-and-fail',
      run: async (ctx) => {
        await ctx.step('hold', () => 'H-1', { compensate: (hold) => void undone.push(hold) });
        return Promise.all([
          ctx.waitFor('approved'),
          ctx.step('charge', async () => {
            await new Promise((r) => setTimeout(r, 20));
            throw new Error('card declined');
          }),
        ]);
      },
    });
    const info = await createRuntime({ store }).start(failing, null, { runId: 'p2' });
    expect(info).toMatchObject({ status: 'failed', error: { message: 'card declined' } });
    expect(undone).toEqual(['H-1']);
  });
});

describe('approvals', () => {
  const payments: string[] = [];
  const pay = defineWorkflow({
    name: 'pay-invoice',
    initialState: null,
    apply: (s: null) => s,
    onFailure: { rollbackTo: 'drafted', after: 'fail' },
    run: async (ctx, input: { amount: number }) => {
      await ctx.checkpoint('drafted');
      await ctx.step('reserve', () => 'r1', { compensate: () => void payments.push('released') });
      const yes = await ctx.approve('large-payment', { details: { amount: input.amount } });
      await ctx.step('pay', () => void payments.push(`paid ${input.amount}`), { approval: 'final-check' });
      return yes;
    },
  });

  it('a person says yes: the decision, reason and reviewer are in the log', async () => {
    const store = await makeStore();
    const runtime = createRuntime({ store, workflows: [pay] });
    payments.length = 0;
    const asked = await runtime.start(pay, { amount: 9000 }, { runId: 'a1' });
    expect(asked.waiting).toEqual({ name: 'approval:large-payment', approval: { label: 'large-payment', details: { amount: 9000 } } });
    await runtime.approve('a1', 'large-payment', { reason: 'budgeted', actor: 'ana' });
    const done = await runtime.approve('a1', 'final-check', { actor: 'bo' });
    expect(done.status).toBe('completed');
    expect(done.output).toEqual({ approved: true, reason: 'budgeted', actor: 'ana' });
    expect(payments).toEqual(['paid 9000']);
  });

  it('a rejection is a trigger: the policy rolls back (compensating) and fails, with the reason', async () => {
    const store = await makeStore();
    const runtime = createRuntime({ store, workflows: [pay] });
    payments.length = 0;
    await runtime.start(pay, { amount: 9000 }, { runId: 'a2' });
    await expect(runtime.reject('a2', 'large-payment', { reason: '' })).rejects.toMatchObject({ code: 'VALIDATION' });
    const done = await runtime.reject('a2', 'large-payment', { reason: 'not in budget', actor: 'cfo' });
    expect(done.status).toBe('failed');
    expect(done.error).toEqual({
      name: 'ApprovalRejectedError',
      message: 'approval "large-payment" was rejected by cfo: not in budget',
      code: 'APPROVAL_REJECTED',
    });
    expect(payments).toEqual(['released']);
  });
});

describe('policies that weigh the failure', () => {
  it('retries only what is worth retrying, then rolls back a transient error and fails a logic error', async () => {
    const store = await makeStore();
    const calls: string[] = [];
    const wf = defineWorkflow({
      name: 'weigh',
      initialState: null,
      apply: (s: null) => s,
      // Transient: go back and try again; anything else: undo everything and fail.
      onFailure: (f: Failure) => (f.error.code === 'ETIMEDOUT' && f.rollbacks < 1 ? { rollbackTo: 'start-here' } : 'compensate-and-fail'),
      run: async (ctx, input: { kind: 'transient' | 'logic' }) => {
        await ctx.checkpoint('start-here');
        await ctx.step('book', () => void calls.push('book'), { compensate: () => void calls.push('unbook') });
        return ctx.step(
          'call',
          ({ attempt }) => {
            calls.push(`call#${attempt}`);
            if (ctx.rollbacks.length > 0) return 'ok';
            if (input.kind === 'logic') throw new NonRetryableError('bad request', { code: 'EBADREQ' });
            throw Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' });
          },
          { retry: { attempts: 3, initialDelayMs: 1, retryIf: (e) => (e as { code?: string }).code === 'ETIMEDOUT' } },
        );
      },
    });
    const runtime = createRuntime({ store, workflows: [wf], clock: fastClock() });
    const transient = await runtime.start(wf, { kind: 'transient' as const }, { runId: 'p1' });
    expect(transient.status).toBe('completed');
    expect(calls).toEqual(['book', 'call#1', 'call#2', 'call#3', 'unbook', 'book', 'call#1']);

    calls.length = 0;
    const logic = await runtime.start(wf, { kind: 'logic' as const }, { runId: 'p2' });
    expect(logic.status).toBe('failed');
    // A NonRetryableError is not retried: one attempt, then the policy.
    expect(calls).toEqual(['book', 'call#1', 'unbook']);
  });
});

describe('irreversible steps', () => {
  const sent: string[] = [];
  const mail = defineWorkflow({
    name: 'mail',
    initialState: null,
    apply: (s: null) => s,
    run: async (ctx) => {
      await ctx.checkpoint('drafted');
      await ctx.step('draft', () => 'd', { compensate: () => void sent.push('draft deleted') });
      await ctx.step('send', () => void sent.push('sent'), { irreversible: true });
      await ctx.step('log', () => 'logged');
    },
  });

  it('a rollback past one is refused and writes nothing; accepted, the step is left as it is and named', async () => {
    const store = await makeStore();
    const runtime = createRuntime({ store, workflows: [mail] });
    sent.length = 0;
    const done = await runtime.start(mail, null, { runId: 'i1' });
    expect(done.pointOfNoReturn).toEqual({ step: 'send', stepKey: 'i1:2:send', version: 5 });
    const version = await store.streamVersion('run-i1');
    const refused = runtime.rollback('i1', { to: 'drafted', reason: 'oops' });
    await expect(refused).rejects.toBeInstanceOf(IrreversibleStepError);
    await expect(refused).rejects.toMatchObject({ step: 'send', stepKey: 'i1:2:send' });
    expect(await store.streamVersion('run-i1')).toBe(version);
    await expect(runtime.rollback('i1', { to: 'drafted', reason: 'x', past: 'later' as never })).rejects.toMatchObject({
      code: 'VALIDATION',
    });

    const back = await runtime.rollback('i1', { to: 'drafted', reason: 'resend later', past: 'irreversible' });
    expect(back.status).toBe('rolled_back');
    expect(sent).toEqual(['sent', 'draft deleted']);
    const marker = (await store.read('run-i1')).find((e) => isRunEvent(e, RunEvents.RolledBack));
    expect(marker?.data).toMatchObject({ irreversible: [{ step: 'send', stepKey: 'i1:2:send' }] });
    // The effect stands: the point of no return is in the past of the effective history no more.
    expect(back.pointOfNoReturn).toBeUndefined();
  });

  it("a trigger's rollback that would cross one throws IrreversibleStepError into the code instead", async () => {
    const store = await makeStore();
    const wf = defineWorkflow({
      name: 'mail-then-fail',
      initialState: null,
      apply: (s: null) => s,
      onFailure: { rollbackTo: 'drafted' },
      run: async (ctx) => {
        await ctx.checkpoint('drafted');
        await ctx.step('send', () => 'sent', { irreversible: true });
        try {
          await ctx.step('after', () => {
            throw new Error('boom');
          });
        } catch (error) {
          return (error as Error).name;
        }
      },
    });
    const info = await createRuntime({ store, workflows: [wf] }).start(wf, null, { runId: 'i2' });
    expect(info.output).toBe('IrreversibleStepError');
    expect(await typesOf(store, 'i2')).not.toContain(RunEvents.RollbackRequested);
  });
});

describe('guardrails', () => {
  it('over the state after an emit, and over a step output (a failed attempt, retried), trigger the policy', async () => {
    const store = await makeStore();
    const wf = defineWorkflow({
      name: 'guarded',
      initialState: { spent: 0 },
      apply: (s: { spent: number }, e) => ({ spent: s.spent + (e.data as number) }),
      guardrails: { 'within budget': (s) => s.spent <= 100 },
      onFailure: { rollbackTo: 'planned', after: 'fail' },
      run: async (ctx) => {
        await ctx.checkpoint('planned');
        const answer = await ctx.step('ask-model', ({ attempt }) => ({ confidence: attempt === 1 ? 0.2 : 0.9 }), {
          guardrails: { confident: (r) => r.confidence >= 0.5 },
          retry: { attempts: 2, initialDelayMs: 1 },
        });
        await ctx.emit({ type: 'Spent', data: 80 });
        await ctx.emit({ type: 'Spent', data: 80 });
        return answer;
      },
    });
    const info = await createRuntime({ store, workflows: [wf], clock: fastClock() }).start(wf, null, { runId: 'g1' });
    expect(info.status).toBe('failed');
    expect(info.error).toMatchObject({ code: 'GUARDRAIL', message: expect.stringContaining('guardrail "within budget" failed') });
    const failed = (await store.read('run-g1')).find((e) => isRunEvent(e, RunEvents.StepFailed));
    expect(failed?.data).toMatchObject({ trigger: 'guardrail', final: false, attempt: 1 });
  });
});
