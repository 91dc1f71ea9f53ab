import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, uniqueSchema } from '../support/postgres.js';
import { tempDir } from '../support/temp.js';
import { bundleChild } from '../torture/processes.js';
import { tortureReactions } from './harness.js';

// The reactions torture on PostgreSQL: 10,000 events over 200 streams, two worker
// processes running the reactions, killed from outside and by their own hand
// between acting on a page and storing its position. See harness.ts.

let child = '';
beforeAll(async () => {
  child = await bundleChild(join(import.meta.dirname, 'child.ts'));
}, 60_000);
afterAll(() => rmSync(dirname(child), { recursive: true, force: true }));

const clean = { starts: [], signals: [], doubles: [], violations: [] };

describe('reactions torture on PostgreSQL', () => {
  it('two workers killed 20 times and paused past their leases twice: every order starts exactly one run, every ping is exactly one signal, all runs complete', {
    timeout: 240_000,
  }, async () => {
    const dir = tempDir('rewind-reactions-');
    const out = await tortureReactions({
      url: `${databaseUrl()}?schema=${uniqueSchema()}`,
      dir,
      child,
      mode: 'safe',
      events: 10_000,
      processes: 2,
      kills: 20,
      stops: 2,
      killAtSave: 0.05,
      appendMs: 8_000,
    });
    const { killed, selfKilled, runs, sent, ...faults } = out;
    expect(faults).toEqual(clean);
    expect({ runs, sent, killed }).toEqual({ runs: 1_050, sent: 500, killed: 20 });
    expect(selfKilled).toBeGreaterThan(0);
  });
});
