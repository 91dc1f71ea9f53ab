import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, uniqueSchema } from '../support/postgres.js';
import { tempDir } from '../support/temp.js';
import { bundleChild } from '../torture/processes.js';
import { CLEAN, TORTURE, tortureReactions } from './harness.js';

// The reactions torture on PostgreSQL, the same as SQLite's (the control and
// the mutation run there). See harness.ts.

let child = '';
beforeAll(async () => {
  child = await bundleChild(join(import.meta.dirname, 'child.ts'));
}, 60_000);
afterAll(() => rmSync(dirname(child), { recursive: true, force: true }));

describe('reactions torture on PostgreSQL', () => {
  it('two workers killed 20 times and paused past their leases twice: every order starts exactly one run, every ping is exactly one signal, all runs complete', {
    timeout: 240_000,
  }, async () => {
    const url = `${databaseUrl()}?schema=${uniqueSchema()}`;
    const { killed, selfKilled, runs, sent, ...faults } = await tortureReactions({
      url,
      dir: tempDir('rewind-reactions-'),
      child,
      ...TORTURE,
    });
    expect(faults).toEqual(CLEAN);
    expect({ runs, sent, killed }).toEqual({ runs: 1_050, sent: 500, killed: 20 });
    expect(selfKilled).toBeGreaterThan(0);
  });
});
