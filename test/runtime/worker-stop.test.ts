import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRuntime, createWorker, isRunEvent, openRunQueue, RunEvents } from '../../src/runtime/index.js';
import { openStore } from '../../src/store/open.js';
import { slowSteps } from '../fixtures/slow-steps.js';
import { tempDir } from '../support/temp.js';
import { Ledger } from '../torture/ledger.js';

const ROOT = join(import.meta.dirname, '../..');

describe('a worker stopped with SIGTERM', () => {
  it('starts nothing after its grace, hands its runs back, and another worker finishes them under the same keys', {
    timeout: 90_000,
  }, async () => {
    const dir = tempDir('rewind-stop-');
    const db = `sqlite:${join(dir, 'runs.db')}`;
    const ledgerFile = join(dir, 'ledger.db');
    const store = await openStore(db);
    const queue = await openRunQueue(store);
    const runtime = createRuntime({ store, workflows: [slowSteps], queue });
    for (const runId of ['a', 'b']) await runtime.start(slowSteps, null, { runId, detach: true });

    // The real CLI, as an operator runs it.
    const worker = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/surfaces/cli/bin.ts',
        'worker',
        '--db',
        db,
        '--workflows',
        'test/fixtures/slow-steps.ts',
        '--grace-ms',
        '1000',
        '--no-projections',
        '--json',
      ],
      { cwd: ROOT, env: { ...process.env, REWIND_LEDGER: ledgerFile }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    worker.stdout.on('data', (d: Buffer) => (out += d.toString()));
    worker.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => worker.on('exit', (code) => resolve(code)));
    // Two steps of each run done, then the stop.
    const ledger = new Ledger(ledgerFile);
    for (let i = 0; i < 300 && ledger.entries().length < 4; i++) await new Promise((r) => setTimeout(r, 50));
    expect(ledger.entries().length).toBeGreaterThanOrEqual(4);
    const stoppedAt = Date.now();
    worker.kill('SIGTERM');
    expect(await exited, out).toBe(0);
    const took = Date.now() - stoppedAt;
    // Within the grace plus the one step each run had in flight (and a process's exit), not the eight steps left.
    expect(took, out).toBeLessThan(1_000 + 1_000 + 2_500);
    const doneByFirst = ledger.entries().length;
    expect(doneByFirst).toBeLessThan(20);
    expect(out).toContain('"reason":"worker stopping"');

    // Another worker, here, finishes them against the same provider.
    process.env.REWIND_LEDGER = ledgerFile;
    const second = createWorker({ store, workflows: [slowSteps], pollMs: 50, queue });
    await second.start();
    for (const runId of ['a', 'b']) {
      for (let i = 0; i < 400 && (await runtime.get(runId)).status !== 'completed'; i++) await new Promise((r) => setTimeout(r, 50));
      expect((await runtime.get(runId)).status).toBe('completed');
    }
    await second.stop();
    // Every step's effect once, under the key its run journaled for it.
    const effects = ledger.entries();
    expect(effects.map((e) => e.key).sort()).toEqual(
      ['a', 'b'].flatMap((r) => Array.from({ length: 10 }, (_, i) => `${r}:${i}:step-${i}`)).sort(),
    );
    for (const runId of ['a', 'b']) {
      const keys = new Set<string>();
      for (const e of await store.read(`run-${runId}`))
        if (isRunEvent(e, RunEvents.StepStarted)) keys.add(`${e.data.seq}=${e.data.idempotencyKey}`);
      expect(keys.size).toBe(10);
    }
    ledger.close();
    await queue.close();
    await store.close();
  });
});
