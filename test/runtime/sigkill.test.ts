import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRuntime, effectiveEvents, RunEvents, type StepCompletedData, statusAfter } from '../../src/runtime/index.js';
import { openStore } from '../../src/store/open.js';
import { crashWorkflow } from '../fixtures/runtime-crash-child.js';
import { runChild } from '../support/child.js';
import { databaseUrl, uniqueSchema } from '../support/postgres.js';

const CHILD = join(import.meta.dirname, '../fixtures/runtime-crash-child.ts');

const backends: [string, (dir: string) => string][] = [
  ['SQLite', (dir) => `sqlite:${join(dir, 'runs.db')}`],
  ['PostgreSQL', () => `${databaseUrl()}?schema=${uniqueSchema()}`],
];

describe.each(backends)('SIGKILL crash test (%s)', (_name, storeUrl) => {
  it('a run killed at random moments, including mid-rollback, completes with no step or compensation applied twice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rewind-kill-'));
    const db = storeUrl(dir);
    const effects = join(dir, 'effects.log');
    let kills = 0;
    let last = '';
    const seen = new Set<string>();
    for (let i = 0; i < 40 && last !== 'completed'; i++) {
      // The first worker dies inside a compensation, the next ones at random moments; later ones run to the end.
      last = await runChild(CHILD, [db, effects, 'victim'], i === 0 ? 'compensating' : i < 12 ? Math.floor(Math.random() * 40) : undefined);
      if (last === 'killed') {
        kills++;
        const probe = await openStore(db);
        const [tail] = await probe.read('run-victim', { direction: 'backward', limit: 1 });
        if (tail) seen.add(statusAfter(tail));
        await probe.close();
      }
    }
    expect(kills).toBeGreaterThan(3);
    expect(seen).toContain('rolling_back');
    expect(last).toBe('completed');

    const store = await openStore(db);
    const wf = crashWorkflow(store, effects);
    const info = await createRuntime({ store, workflows: [wf] }).get('victim');
    expect(info.status).toBe('completed');
    expect(info.state).toBe(41);
    expect(info.rollbacks).toHaveLength(2);

    const lines = existsSync(effects) ? readFileSync(effects, 'utf8').trim().split('\n') : [];
    expect(lines.filter((l) => l.startsWith('VIOLATION'))).toEqual([]);
    const events = await store.read('run-victim');
    const completed = events.filter((e) => e.type === RunEvents.StepCompleted).map((e) => (e.data as StepCompletedData).idempotencyKey);
    const kept = new Set(
      effectiveEvents(events)
        .filter((e) => e.type === RunEvents.StepCompleted)
        .map((e) => (e.data as StepCompletedData).idempotencyKey),
    );
    for (const key of completed.filter((k) => !k.includes('fragile'))) {
      // Applied under its key (more than once only if killed between the effect and its record: same key, deduplicated).
      expect(lines).toContain(`do ${key}`);
      const undos = lines.filter((l) => l === `undo ${key}`).length;
      if (kept.has(key)) expect(undos).toBe(0);
      else expect(undos).toBeGreaterThanOrEqual(1);
    }
    expect((await store.verify()).ok).toBe(true);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);
});
