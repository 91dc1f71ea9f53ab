import { describe, expect, it } from 'vitest';
import { createRuntime, defineWorkflow, RunEvents } from '../../src/runtime/index.js';
import { inboxOf, postRequest, REQUEST_HANDLED } from '../../src/runtime/requests.js';
import { makeStore } from './helpers.js';

// Requests through the run's driver (requests.ts, driver.ts): what two callers asking the same thing at once get.

describe('the same request twice', () => {
  it('given two identical rollbacks posted before the driver looked (two callers at once), then one rollback runs and both are done', async () => {
    const store = await makeStore();
    const undone: string[] = [];
    const workflow = defineWorkflow({
      name: 'two-callers',
      initialState: null,
      apply: (s: null) => s,
      run: async (ctx) => {
        await ctx.checkpoint('cp');
        await ctx.step('book', () => 'booked', { compensate: () => void undone.push('book') });
        await ctx.waitFor('go');
      },
    });
    const runtime = createRuntime({ store, workflows: [workflow] });
    expect((await runtime.start(workflow, null, { runId: 'r1' })).status).toBe('waiting');
    // The check of each caller passed on a waiting run; neither saw the other's post, which landed after its check.
    const request = { kind: 'rollback' as const, to: 'cp', reason: 'operator: back to cp', after: 'stop' as const };
    const first = await postRequest(store, 'r1', request, 'ana');
    const second = await postRequest(store, 'r1', request, 'bo');

    const info = await runtime.drive('r1');

    expect(info.status).toBe('rolled_back');
    expect(undone).toEqual(['book']);
    const run = await store.read('run-r1');
    expect(run.filter((e) => e.type === RunEvents.RollbackRequested)).toHaveLength(1);
    const handled = (await store.read(inboxOf('r1'))).filter((e) => e.type === REQUEST_HANDLED).map((e) => e.data);
    expect(handled).toEqual([
      { request: first, outcome: 'done' },
      { request: second, outcome: 'done' },
    ]);
    await runtime.close();
  });
});
