import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, uniqueSchema } from '../support/postgres.js';
import { tempDir } from '../support/temp.js';
import { bundleChild } from '../torture/processes.js';
import { chaos, faults, NO_FAULTS } from './harness.js';

// The concurrency torture on PostgreSQL, smaller than SQLite's: four processes
// on one schema, one paused past its lease and one killed. See harness.ts.

let actor = '';
beforeAll(async () => {
  actor = await bundleChild(join(import.meta.dirname, 'actor.ts'));
}, 60_000);
afterAll(() => rmSync(dirname(actor), { recursive: true, force: true }));

describe('concurrency torture on PostgreSQL', () => {
  it('four processes, one paused past its lease and one killed: no attempt runs twice but for the one in flight', {
    timeout: 180_000,
  }, async () => {
    const dir = tempDir('rewind-chaos-');
    const url = `${databaseUrl()}?schema=${uniqueSchema()}`;
    const out = await chaos({
      url,
      dir,
      actor,
      processes: 4,
      runs: 20,
      durationMs: 5_000,
      leaseMs: 1_500,
      mode: 'safe',
      stops: 1,
      kills: 1,
    });
    expect(faults(out)).toEqual(NO_FAULTS);
    for (const action of ['start', 'resume', 'signal', 'rollback', 'cancel', 'retry']) expect(out.done[action] ?? 0).toBeGreaterThan(0);
  });
});
