import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { ValidationError } from '../../src/events/errors.js';
import { defineWorkflow, RunEvents, type RunStartedData, runStreamId } from '../../src/runtime/index.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import type { EventStore } from '../../src/store/types.js';
import { makeStore } from './helpers.js';

/** Runs recorded straight into the log (a RunStarted each, some completed), so a thousand cost no workflow. */
async function seed(store: EventStore, count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, (_, i) => `r${String(i).padStart(5, '0')}`);
  await store.appendMany(
    ids.map((runId, i) => ({
      streamId: runStreamId(runId),
      expectedVersion: 'no_stream' as const,
      events: [
        {
          type: RunEvents.RunStarted,
          data: { runId, workflow: i % 2 ? 'odd' : 'even', workflowVersion: '1', input: null } satisfies RunStartedData,
        },
        ...(i % 3 === 0 ? [{ type: RunEvents.RunCompleted, data: { output: null } }] : []),
      ],
    })),
  );
  return ids;
}

/** The store, counting its stream reads. */
function counting(store: EventStore): { store: EventStore; reads: () => number } {
  let reads = 0;
  const counted = new Proxy(store, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (key !== 'read' || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value;
      return (...args: unknown[]) => {
        reads++;
        return value.apply(target, args);
      };
    },
  });
  return { store: counted, reads: () => reads };
}

describe('listing runs', () => {
  it('pages through every run in id order, across the store listing page, with filters', async () => {
    const store = await makeStore();
    const ids = await seed(store, 1003);
    await store.append('run-notes', [{ type: 'Note', data: null }]); // not a run: skipped
    const runtime = createRuntime({ store });

    expect((await runtime.list()).map((r) => r.runId)).toEqual(ids);
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    for (;;) {
      const page = await runtime.listPage({ after, limit: 300 });
      seen.push(...page.runs.map((r) => r.runId));
      pages++;
      if (page.next === undefined) break;
      expect(page.next).toBe(page.runs.at(-1)?.runId);
      after = page.next;
    }
    expect(seen).toEqual(ids);
    expect(pages).toBe(4);

    // The page that spans the store's 1,000-stream listing page.
    const spanning = await runtime.listPage({ after: ids[997], limit: 4 });
    expect(spanning.runs.map((r) => r.runId)).toEqual(ids.slice(998, 1002));
    expect(spanning.next).toBe(ids[1001]);
    // Exactly filling the last page leaves no next.
    const last = await runtime.listPage({ after: ids[1000], limit: 2 });
    expect(last).toEqual({ runs: [expect.objectContaining({ runId: ids[1001] }), expect.objectContaining({ runId: ids[1002] })] });

    const completedOdd = await runtime.listPage({ status: 'completed', workflow: 'odd', limit: 1000 });
    expect(completedOdd.runs.map((r) => r.runId)).toEqual(ids.filter((_, i) => i % 3 === 0 && i % 2 === 1));
    expect(completedOdd.runs[0]).toMatchObject({ workflow: 'odd', status: 'completed', version: 2 });
    expect(await runtime.listPage({ after: ids.at(-1) })).toEqual({ runs: [] });
  });

  it('reads no run stream for a page: the runs index holds what the page shows', async () => {
    const store = await makeStore();
    await seed(store, 50);
    const reads = vi.spyOn(store, 'read');
    const page = await createRuntime({ store }).listPage({ status: 'completed', limit: 5 });
    expect(page.runs.map((r) => r.runId)).toEqual(['r00000', 'r00003', 'r00006', 'r00009', 'r00012']);
    expect(page.next).toBe('r00012');
    expect(reads).not.toHaveBeenCalled();
  });

  it('without the index (a store behind a wrapper) reads only as far as the page and one more run', async () => {
    const base = await makeStore();
    await seed(base, 50);
    const { store, reads } = counting(base);
    const page = await createRuntime({ store }).listPage({ limit: 5 });
    expect(page.runs).toHaveLength(5);
    // Two reads per run (its first and last event), for the page and the one that shows a next page exists.
    expect(reads()).toBe(2 * 6);
  });

  it('refuses a bad page size or cursor with a typed error', async () => {
    const runtime = createRuntime({ store: await makeStore() });
    for (const limit of [0, -1, 1.5, 1001, Number.NaN]) {
      await expect(runtime.listPage({ limit })).rejects.toThrow(ValidationError);
    }
    await expect(runtime.listPage({ limit: 0 })).rejects.toThrow(/limit must be an integer from 1 to 1000, got 0/);
    await expect(runtime.listPage({ after: 42 as unknown as string })).rejects.toThrow(/after must be the "next" of the previous page/);
  });
  it('says what a waiting run waits for: a signal by name, an approval by its label, through a refused signal too', async () => {
    const store = await makeStore();
    const review = defineWorkflow<null, null>({
      name: 'review',
      initialState: null,
      apply: (s) => s,
      run: async (ctx) => {
        await ctx.waitFor('draft', { schema: z.object({ text: z.string() }) });
        await ctx.approve('publish');
        return null;
      },
    });
    const runtime = createRuntime({ store, workflows: [review] });
    await runtime.start(review, null, { runId: 'rv' });
    const waiting = async () => (await runtime.listPage({ status: 'waiting' })).runs.map((r) => [r.runId, r.waitingFor]);
    expect(await waiting()).toEqual([['rv', 'draft']]);
    await runtime.signal('rv', 'draft', { text: 42 }); // refused by the wait's schema: still waiting for it
    expect(await waiting()).toEqual([['rv', 'draft']]);
    await runtime.signal('rv', 'draft', { text: 'hello' });
    expect(await waiting()).toEqual([['rv', 'approval:publish']]);
    await runtime.approve('rv', 'publish');
    const [done] = (await runtime.listPage()).runs;
    expect(done).toMatchObject({ runId: 'rv', status: 'completed' });
    expect(done).not.toHaveProperty('waitingFor');
  });
});
