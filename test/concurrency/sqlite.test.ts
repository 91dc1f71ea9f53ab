import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/temp.js';
import { bundleChild } from '../torture/processes.js';
import { chaos, faults, NO_FAULTS } from './harness.js';

// The concurrency torture on SQLite: processes acting at random on the same
// runs at once, against a ledger that counts every call. See harness.ts.

let actor = '';
beforeAll(async () => {
  actor = await bundleChild(join(import.meta.dirname, 'actor.ts'));
}, 60_000);
afterAll(() => rmSync(dirname(actor), { recursive: true, force: true }));

// Leases long enough that a process merely slowed by a busy machine keeps its runs: only a pause or a kill loses them.
const base = { runs: 20, leaseMs: 2_500 };

describe('concurrency torture on SQLite', () => {
  it('one process alone (the control): each journaled attempt is exactly one call', { timeout: 120_000 }, async () => {
    const dir = tempDir('rewind-chaos-');
    const out = await chaos({ ...base, url: `sqlite:${join(dir, 'log.db')}`, dir, actor, processes: 1, durationMs: 3_000, mode: 'safe' });
    expect(faults(out)).toEqual(NO_FAULTS);
    expect(out.calls).toBeGreaterThan(20);
  });

  it('four processes at once: no attempt runs twice, every request is carried out, every signal answers one wait', {
    timeout: 180_000,
  }, async () => {
    const dir = tempDir('rewind-chaos-');
    const out = await chaos({ ...base, url: `sqlite:${join(dir, 'log.db')}`, dir, actor, processes: 4, durationMs: 6_000, mode: 'safe' });
    expect(faults(out)).toEqual(NO_FAULTS);
    // Every kind of act happened, many times.
    for (const action of ['start', 'resume', 'signal', 'rollback', 'cancel', 'retry']) expect(out.done[action] ?? 0).toBeGreaterThan(0);
  });

  it('four processes with one paused past its lease and one killed: a pause or a kill adds at most one call, for the attempt in flight', {
    timeout: 180_000,
  }, async () => {
    const dir = tempDir('rewind-chaos-');
    const out = await chaos({
      ...base,
      url: `sqlite:${join(dir, 'log.db')}`,
      dir,
      actor,
      processes: 4,
      durationMs: 6_000,
      mode: 'safe',
      stops: 1,
      kills: 1,
    });
    expect(faults(out)).toEqual(NO_FAULTS);
  });

  it('the mutation: with ownership off, attempts run twice (the torture can fail)', { timeout: 120_000 }, async () => {
    const dir = tempDir('rewind-chaos-');
    const out = await chaos({ ...base, url: `sqlite:${join(dir, 'log.db')}`, dir, actor, processes: 4, durationMs: 3_000, mode: 'unsafe' });
    expect(out.doubles.length).toBeGreaterThan(0);
  });
});
