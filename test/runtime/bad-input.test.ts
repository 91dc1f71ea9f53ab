import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ValidationError } from '../../src/events/errors.js';
import {
  createRuntime,
  defineWorkflow,
  NotJsonError,
  RunConflictError,
  RunNotFoundError,
  RunStateError,
  StepFailedError,
  UnknownWorkflowError,
} from '../../src/runtime/index.js';
import { makeStore } from './helpers.js';

const wf = defineWorkflow({
  name: 'typed',
  input: z.object({ city: z.string().min(1) }),
  initialState: null,
  apply: (s) => s,
  run: async (ctx, input) => ctx.step('echo', () => input.city),
});

describe('bad input gets a typed error and writes nothing', () => {
  it('rejects each kind of bad input', async () => {
    const store = await makeStore();
    const runtime = createRuntime({ store });
    const empty = async () => expect(await store.listStreams()).toEqual([]);

    await expect(runtime.start('nope', {})).rejects.toBeInstanceOf(UnknownWorkflowError);
    const invalid = await runtime.start(wf, { city: '' } as never).catch((e) => e);
    expect(invalid).toBeInstanceOf(ValidationError);
    expect(invalid.message).toContain('city');
    await expect(runtime.start(wf, { city: 'Oslo' }, { runId: 'has space' })).rejects.toBeInstanceOf(ValidationError);
    await expect(runtime.resume('ghost')).rejects.toBeInstanceOf(RunNotFoundError);
    await expect(runtime.get('run-ghost')).rejects.toMatchObject({
      code: 'RUN_NOT_FOUND',
      hint: 'a run id has no "run-" prefix (that is its stream\'s name): try "ghost"',
    });
    await expect(runtime.get('ghost')).rejects.toBeInstanceOf(RunNotFoundError);
    await expect(runtime.cancel('ghost')).rejects.toBeInstanceOf(RunNotFoundError);
    await expect(runtime.retryCompensation('ghost')).rejects.toBeInstanceOf(RunNotFoundError);
    await expect(runtime.rollback('ghost', { to: 'latest', reason: 'x' })).rejects.toBeInstanceOf(RunNotFoundError);
    expect(() => defineWorkflow({ name: 'bad name!', initialState: 0, apply: (s) => s, run: async () => 0 })).toThrow(ValidationError);
    await empty();
  });

  it('refuses a reused run id with other input or another workflow', async () => {
    const store = await makeStore();
    const runtime = createRuntime({ store });
    await runtime.start(wf, { city: 'Oslo' }, { runId: 'r' });
    const version = await store.streamVersion('run-r');
    await expect(runtime.start(wf, { city: 'Rome' }, { runId: 'r' })).rejects.toBeInstanceOf(RunConflictError);
    const other = defineWorkflow({ ...wf, name: 'other' });
    await expect(runtime.start(other, { city: 'Oslo' }, { runId: 'r' })).rejects.toBeInstanceOf(RunConflictError);
    await expect(runtime.retryCompensation('r')).rejects.toBeInstanceOf(RunStateError);
    await expect(runtime.cancel('r')).rejects.toBeInstanceOf(RunStateError);
    expect(await store.streamVersion('run-r')).toBe(version);
  });

  it('a runtime that does not know the workflow cannot resume it', async () => {
    const store = await makeStore();
    await createRuntime({ store }).start(wf, { city: 'Oslo' }, { runId: 'r' });
    await expect(createRuntime({ store }).resume('r')).rejects.toBeInstanceOf(UnknownWorkflowError);
  });

  it('a step result that is not JSON is a typed failure, never journaled', async () => {
    const store = await makeStore();
    const bad = defineWorkflow({
      name: 'not-json',
      initialState: null,
      apply: (s) => s,
      run: async (ctx) => {
        const error = await ctx.step('date', () => new Date() as unknown as string, { retry: { attempts: 5 } }).catch((e) => e);
        return { caught: error instanceof StepFailedError, cause: (error as Error).cause instanceof NotJsonError };
      },
    });
    const info = await createRuntime({ store }).start(bad, null, { runId: 'nj' });
    expect(info.output).toEqual({ caught: true, cause: true });
    const events = await store.read('run-nj');
    // Not retried: retrying cannot make a Date JSON.
    expect(events.filter((e) => e.type === 'StepStarted')).toHaveLength(1);
    expect(events.some((e) => e.type === 'StepCompleted')).toBe(false);
  });

  it('ctx misuse throws before anything is journaled', async () => {
    const store = await makeStore();
    const misuse = defineWorkflow({
      name: 'misuse',
      initialState: null,
      apply: (s) => s,
      run: async (ctx) => {
        const errors: string[] = [];
        for (const f of [
          () => ctx.emit({ type: 'StepCompleted', data: 1 }),
          () => ctx.emit({ type: 'X', data: () => 1 }),
          () => ctx.checkpoint(''),
          () => ctx.checkpoint('latest'),
          () => ctx.sleep(-1),
          () => ctx.step('', () => 1),
        ]) {
          errors.push(
            await f().then(
              () => 'ok',
              (e) => e.code,
            ),
          );
        }
        return errors;
      },
    });
    const info = await createRuntime({ store }).start(misuse, null, { runId: 'm' });
    expect(info.output).toEqual(['VALIDATION', 'NOT_JSON', 'VALIDATION', 'VALIDATION', 'VALIDATION', 'VALIDATION']);
    expect((await store.read('run-m')).map((e) => e.type)).toEqual(['RunStarted', 'RunCompleted']);
  });

  it('step options of the wrong type are refused before the step starts, each named', async () => {
    const store = await makeStore();
    let calls = 0;
    const count = () => {
      calls++;
      throw new Error('down');
    };
    const misuse = defineWorkflow({
      name: 'bad-options',
      initialState: null,
      apply: (s) => s,
      run: async (ctx) => {
        const messages: string[] = [];
        for (const options of [
          { retry: { attempts: 'three' } },
          { retry: { attempts: 0, initialDelayMs: -1, factor: 0.5 } },
          { timeoutMs: '5s' },
          { compensate: 'refund' },
          { breaker: '' },
        ]) {
          messages.push(await ctx.step('s', count, options as never).then(String, (e: ValidationError) => `${e.code}: ${e.message}`));
        }
        return messages;
      },
    });
    const info = await createRuntime({ store }).start(misuse, null, { runId: 'o' });
    const hint = ' (see the ctx.step options in the README: numbers are milliseconds or counts, hooks are functions)';
    expect(info.output).toEqual([
      'VALIDATION: invalid options of step "s": retry.attempts must be a whole number of attempts, 1 or more, got "three"' + hint,
      'VALIDATION: invalid options of step "s": retry.attempts must be a whole number of attempts, 1 or more, got 0; ' +
        'retry.initialDelayMs must be a number of ms, 0 or more, got -1; retry.factor must be a number, 1 or more, got 0.5' +
        hint,
      'VALIDATION: invalid options of step "s": timeoutMs must be a positive number of ms, got "5s"' + hint,
      'VALIDATION: invalid options of step "s": compensate must be a function' + hint,
      'VALIDATION: invalid options of step "s": breaker must be a non-empty name' + hint,
    ]);
    expect(calls).toBe(0);
    expect((await store.read('run-o')).map((e) => e.type)).toEqual(['RunStarted', 'RunCompleted']);
  });

  it('a runtime without a store, and a list filter that cannot match, are refused', async () => {
    expect(() => createRuntime({} as never)).toThrow(ValidationError);
    const runtime = createRuntime({ store: await makeStore() });
    const bogus = await runtime.list({ status: 'bogus' as never }).catch((e: unknown) => e);
    expect(bogus).toBeInstanceOf(ValidationError);
    expect((bogus as ValidationError).hint).toContain('completed');
    await expect(runtime.listPage({ status: 'bogus' as never })).rejects.toBeInstanceOf(ValidationError);
  });

  it("a cancel or a rollback the run's status refuses says why for that status, and keeps what it was asked", async () => {
    const runtime = createRuntime({ store: await makeStore() });
    await runtime.start(wf, { city: 'Oslo' }, { runId: 'done' });
    const parked = defineWorkflow({ name: 'parked', initialState: null, apply: (s) => s, run: async (ctx) => ctx.waitFor('go') });
    await runtime.start(parked, null, { runId: 'parked' });
    const refusal = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: RunStateError) => [e.status, e.wanted, e.hint],
      );
    expect(await refusal(runtime.cancel('done'))).toEqual(['completed', 'cancel', 'it has ended: there is nothing left to cancel']);
    // A waiting run is neither: it takes both (a rollback covers the steps done before the wait).
    await runtime.start(parked, null, { runId: 'parked-2' });
    expect((await runtime.rollback('parked-2', { to: 'start', reason: 'x' })).status).toBe('rolled_back');
    expect((await runtime.cancel('parked')).status).toBe('cancelled');
    expect(await refusal(runtime.rollback('parked', { to: 'start', reason: 'x' }))).toEqual([
      'cancelled',
      'roll back',
      'a cancelled run stays as it is',
    ]);
  });
});
