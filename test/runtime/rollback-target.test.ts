import { describe, expect, it } from 'vitest';
import { createRuntime, defineWorkflow, type FailurePolicy, RunEvents } from '../../src/runtime/index.js';
import { timelineOf } from '../../src/runtime/model/index.js';
import { makeStore } from './helpers.js';

// A failure policy's `rollbackTo` names a checkpoint label. When the run has not reached that label, the
// rollback goes to the latest checkpoint (or the start, when there is none), and the log says so: the
// request, its marker and the run's rollbacks name the label as `unreached`.

/** Charges, then ships; shipping fails. `ready` is the checkpoint before the charge, when there is one. */
function order(onFailure: FailurePolicy, checkpoint: boolean) {
  return defineWorkflow({
    name: 'order',
    initialState: null,
    apply: (s: null) => s,
    onFailure,
    run: async (ctx) => {
      if (checkpoint) await ctx.checkpoint('ready');
      await ctx.step('charge', () => 'ch_1', { compensate: () => undefined });
      await ctx.checkpoint('charged');
      await ctx.step('ship', () => {
        throw new Error('out of stock');
      });
    },
  });
}

/** What the rollback's two protocol events and the run's info say about where it went. */
async function rollbackOf(onFailure: FailurePolicy, checkpoint: boolean) {
  const store = await makeStore();
  const info = await createRuntime({ store }).start(order(onFailure, checkpoint), null, { runId: 'o' });
  const events = await store.read('run-o');
  const where = (type: string) => {
    const { targetVersion, label, unreached } = (events.find((e) => e.type === type)?.data ?? {}) as Record<string, unknown>;
    return { targetVersion, label, unreached };
  };
  const marker = timelineOf(events).find((t) => t.type === RunEvents.RolledBack)?.summary;
  const { targetVersion, label, unreached } = info.rollbacks[0] ?? {};
  return { requested: where(RunEvents.RollbackRequested), marker, info: { status: info.status, targetVersion, label, unreached } };
}

describe("a policy's rollbackTo label the run never reached", () => {
  it('given a label after the failure, then the rollback goes to the latest checkpoint and names the label it could not reach', async () => {
    expect(await rollbackOf({ rollbackTo: 'shipped', after: 'fail' }, true)).toEqual({
      requested: { targetVersion: 5, label: 'charged', unreached: 'shipped' },
      marker: 'to "charged" (v5) instead of "shipped", which the run never reached: out of stock',
      info: { status: 'failed', targetVersion: 5, label: 'charged', unreached: 'shipped' },
    });
  });

  it('given a label the code never checkpoints and no checkpoint before the failure, then it goes to the start and says so', async () => {
    const noCheckpointYet = defineWorkflow({
      name: 'first-step-fails',
      initialState: null,
      apply: (s: null) => s,
      onFailure: { rollbackTo: 'nope', after: 'fail' },
      run: async (ctx) => {
        await ctx.step('charge', () => {
          throw new Error('declined');
        });
      },
    });
    const store = await makeStore();
    const info = await createRuntime({ store }).start(noCheckpointYet, null, { runId: 'n' });
    expect(info.rollbacks).toMatchObject([{ targetVersion: 1, label: '(start)', unreached: 'nope' }]);
    const marker = (await store.read('run-n')).find((e) => e.type === RunEvents.RolledBack);
    expect(marker?.data).toMatchObject({ targetVersion: 1, label: '(start)', unreached: 'nope' });
  });

  it('given the label reached, or latest, then the rollback goes there and names nothing unreached', async () => {
    expect(await rollbackOf({ rollbackTo: 'ready', after: 'fail' }, true)).toEqual({
      requested: { targetVersion: 2, label: 'ready', unreached: undefined },
      marker: 'to "ready" (v2): out of stock',
      info: { status: 'failed', targetVersion: 2, label: 'ready', unreached: undefined },
    });
    expect((await rollbackOf({ rollbackTo: 'latest', after: 'fail' }, false)).requested).toEqual({
      targetVersion: 4,
      label: 'charged',
      unreached: undefined,
    });
  });
});
