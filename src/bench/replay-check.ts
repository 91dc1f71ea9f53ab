import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createRuntime, defineWorkflow } from '../runtime/index.js';
import { openStore } from '../store/open.js';
import { note, record } from './lib.js';

const SECTION = 'replay';

const order = (changed: boolean) =>
  defineWorkflow({
    name: 'bench-order',
    initialState: null,
    apply: (s) => s,
    run: async (ctx, input: { steps: number }) => {
      for (let i = 0; i < input.steps; i++) {
        if (i === 1 && changed && (await ctx.changed('extra'))) await ctx.step('extra', () => 'x');
        await ctx.step(`s${i}`, () => i);
      }
      return input.steps;
    },
  });

/**
 * The replay check (`rewind replay`) over a SQLite log of many runs: how many
 * runs a second it replays against new code, and how far the heap grows
 * while it does (it reads run by run, so this should follow one run, not the log).
 */
export async function benchReplayCheck(scale: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-bench-replay-'));
  try {
    const runs = Math.max(100, Math.round(10_000 * scale));
    const steps = 10;
    const store = await openStore(`sqlite:${join(dir, 'replay.db')}`, { durability: 'normal' });
    const populate = createRuntime({ store, workflows: [order(false)] });
    for (let i = 0; i < runs; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, runs - i) }, (_, j) => populate.start(order(false), { steps }, { runId: `r${i + j}` })),
      );
    }
    const events = (await store.headPosition()).toLocaleString('en-US');
    const start = process.hrtime.bigint();
    const report = await createRuntime({ store, workflows: [order(true)] }).replayCheck();
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    // The heap left live (after a full collection) every 500 runs, against before the check: what it holds on to as it goes.
    const gc = collector();
    gc();
    const baseline = process.memoryUsage().heapUsed;
    let peak = baseline;
    await createRuntime({ store, workflows: [order(true)] }).replayCheck({
      onProgress: ({ done }) => {
        if (done % 500 !== 0) return;
        gc();
        peak = Math.max(peak, process.memoryUsage().heapUsed);
      },
    });
    if (!report.ok || report.checked !== runs)
      throw new Error(`replay check: expected ${runs} runs to replay, got ${JSON.stringify(report)}`);
    record({
      section: SECTION,
      name: `replay check, ${runs.toLocaleString('en-US')} runs of ${steps} steps (${events} events) on SQLite`,
      ops: runs,
      seconds,
      unit: 'runs/s',
    });
    note(
      SECTION,
      `live heap grew by at most ${((peak - baseline) / 2 ** 20).toFixed(1)} MiB while checking ${runs.toLocaleString('en-US')} runs`,
    );
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A full garbage collection, without starting node with --expose-gc. */
function collector(): () => void {
  setFlagsFromString('--expose_gc');
  return runInNewContext('gc') as () => void;
}
