import { describe, expect, it } from 'vitest';
import { createRuntime, createWorker, defineWorkflow, openRunQueue, type WorkerEvent } from '../../src/runtime/index.js';
import type { EventStore } from '../../src/store/types.js';
import { openTestPostgresStore } from '../support/postgres.js';
import { makeStore } from './helpers.js';

// With workers, a waiting run holds no worker: a signal queues it for any
// worker, and a wait with a timeout comes back to the queue when it runs out.

const shipment = defineWorkflow({
  name: 'shipment',
  initialState: null,
  apply: (s: null) => s,
  onFailure: (f) => (f.kind === 'timeout' ? { rollbackTo: 'ordered', after: 'fail' } : 'fail'),
  run: async (ctx, input: { timeoutMs?: number }) => {
    await ctx.checkpoint('ordered');
    await ctx.step('reserve', () => 'R-1', { compensate: () => undefined });
    const tracking = await ctx.waitFor<string>('shipped', input.timeoutMs === undefined ? {} : { timeoutMs: input.timeoutMs });
    return tracking;
  },
});

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const backends: Array<[string, () => Promise<EventStore>]> = [
  ['memory', makeStore],
  ['PostgreSQL', () => openTestPostgresStore()],
];

describe.each(backends)('waits with workers (%s)', (_name, open) => {
  it('a parked run holds no worker; the signal wakes one; a timeout comes back on its own', async () => {
    const store = await open();
    const queue = await openRunQueue(store);
    const runtime = createRuntime({ store, workflows: [shipment], queue });
    const events: WorkerEvent[] = [];
    const worker = createWorker({ store, workflows: [shipment], queue, pollMs: 50, onEvent: (e) => events.push(e) });
    await worker.start();
    try {
      await runtime.start(shipment, {}, { runId: 's1', detach: true });
      await runtime.start(shipment, { timeoutMs: 300 }, { runId: 's2', detach: true });
      await until(async () => (await runtime.get('s1')).status === 'waiting', 's1 to wait');
      await until(async () => worker.running.length === 0, 'the worker to let go');
      expect(events).toContainEqual({ type: 'finished', worker: worker.id, runId: 's1', status: 'waiting' });

      await runtime.signal('s1', 'shipped', 'DHL-42', { actor: 'warehouse' });
      await until(async () => (await runtime.get('s1')).status === 'completed', 's1 to complete');
      expect((await runtime.get('s1')).output).toBe('DHL-42');

      // s2's wait runs out with no worker holding it: the queue brings it back, the timeout goes through the policy.
      await until(async () => (await runtime.get('s2')).status === 'failed', 's2 to time out');
      const s2 = await runtime.get('s2');
      expect(s2.error).toMatchObject({ name: 'WaitTimeoutError', code: 'WAIT_TIMEOUT' });
      expect(s2.rollbacks).toMatchObject([{ label: 'ordered', trigger: { kind: 'timeout', step: 'shipped' } }]);
      expect(events).toContainEqual(
        expect.objectContaining({ type: 'requeued', runId: 's2', status: 'waiting', reason: 'waiting for a signal' }),
      );
    } finally {
      await worker.stop();
      await queue.close();
      await store.close();
    }
  });
});
