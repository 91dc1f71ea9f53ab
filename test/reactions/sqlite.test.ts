import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/temp.js';
import { bundleChild } from '../torture/processes.js';
import { CLEAN, CONTROL, MUTATION, TORTURE, tortureReactions } from './harness.js';

// The reactions torture on SQLite: 10,000 events over 200 streams, two worker
// processes running the reactions, killed from outside and by their own hand
// between acting on a page and storing its position. See harness.ts.

let child = '';
beforeAll(async () => {
  child = await bundleChild(join(import.meta.dirname, 'child.ts'));
}, 60_000);
afterAll(() => rmSync(dirname(child), { recursive: true, force: true }));

/** A fresh SQLite log. */
function sqlite() {
  const dir = tempDir('rewind-reactions-');
  return { url: `sqlite:${join(dir, 'log.db')}`, dir, child };
}

describe('reactions torture on SQLite', () => {
  it('two workers killed 20 times and paused past their leases twice: every order starts exactly one run, every ping is exactly one signal, all runs complete', {
    timeout: 240_000,
  }, async () => {
    const { killed, selfKilled, runs, sent, ...faults } = await tortureReactions({ ...sqlite(), ...TORTURE });
    expect(faults).toEqual(CLEAN);
    expect({ runs, sent, killed }).toEqual({ runs: 1_050, sent: 500, killed: 20 });
    expect(selfKilled).toBeGreaterThan(0);
  });

  it('one worker alone, never killed (the control): the same counts, and each journaled attempt is one call', {
    timeout: 240_000,
  }, async () => {
    const { killed, selfKilled, runs, sent, ...faults } = await tortureReactions({ ...sqlite(), ...CONTROL });
    expect(faults).toEqual(CLEAN);
    expect({ runs, sent, killed, selfKilled }).toEqual({ runs: 250, sent: 100, killed: 0, selfKilled: 0 });
  });

  it('the mutation: run ids not derived from the event start a second run for an event acted on again', { timeout: 240_000 }, async () => {
    const out = await tortureReactions({ ...sqlite(), ...MUTATION });
    expect(out.starts.some((s) => / [2-9] runs$/.test(s))).toBe(true);
  });
});
