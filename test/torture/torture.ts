import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open.js';
import { tempDir } from '../support/temp.js';
import { operate, violations } from './harness.js';
import { Ledger } from './ledger.js';
import { bundleChild, runChild } from './processes.js';
import type { Scenario } from './scenarios.js';

// The crash torture. For every scenario: a reference run counts the
// boundaries (just before and just after every append); then, for each
// boundary, a fresh run is played by a child process that SIGKILLs itself
// exactly there, and the operator (this process) picks it up from the log and
// plays it to the end. Then random kills on top: a chain of children each
// killed at a random instant. After each, the log and the provider's ledger
// must agree (harness.ts): no effect twice, none left undone by a rollback,
// no undo without a do, undone newest first, one key per logical step,
// `verify` clean, and a second resume that writes and runs nothing.
//
// REWIND_TORTURE_SOAK=N adds N chains of three random kills per scenario (a
// soak: N=15 over the 24 SQLite scenarios is 1,080 kills).

const SOAK = Number(process.env.REWIND_TORTURE_SOAK ?? 0);

export interface TortureBackend {
  name: string;
  /** A store for one scenario's runs (each kill point is a run of its own). */
  url: (dir: string) => string;
  scenarios: Scenario[];
  /** Chains of random kills per scenario (besides REWIND_TORTURE_SOAK). */
  random: number;
}

/**
 * The crash torture of `backend`'s scenarios. A scenario whose compensations
 * are declared differs from its inline twin only in where a rollback resumed
 * by another process finds them, so its boundaries are enumerated from its
 * first rollback request on; the inline twin covers the ones before.
 */
export function describeTorture(backend: TortureBackend): void {
  let child = '';
  beforeAll(async () => {
    child = await bundleChild();
  }, 60_000);
  afterAll(() => rmSync(dirname(child), { recursive: true, force: true }));

  describe(`crash torture on ${backend.name}`, () => {
    it.each(backend.scenarios.map((s) => [`${s.name} (${s.hooks})`, s] as const))(
      '%s: a kill before and after every append, and at random instants',
      { timeout: 900_000 },
      async (_title, sc: Scenario) => {
        const dir = tempDir('rewind-torture-');
        const url = backend.url(dir);
        // One provider for every run of the scenario, each run's keys its own.
        const ledger = new Ledger(join(dir, 'ledger.db'));
        const store = await openStore(url, { durability: 'normal' });
        const play = (runId: string, kill: string) => runChild(child, [url, dir, sc.name, sc.hooks, runId, kill]);
        const recover = async (runId: string) => {
          const world = { ledger, dir: join(dir, runId) };
          mkdirSync(world.dir, { recursive: true });
          await operate(store, world, sc, runId);
          return violations(store, ledger, sc, runId);
        };
        const found: Record<string, string[]> = {};
        const note = (what: string, v: string[]) => {
          if (v.length) found[what] = v;
        };
        try {
          const reference = await play('ref', 'none');
          if (reference.killed) throw new Error('the reference run was killed');
          note('reference', await violations(store, ledger, sc, 'ref'));
          const first = sc.hooks === 'declared' ? reference.protocol + 1 : 1;
          const unreached: number[] = [];
          const kills = Array.from({ length: reference.boundaries - first + 1 }, (_, i) => first + i);
          await inPairs(kills, async (b) => {
            const runId = `k${b}`;
            const end = await play(runId, String(b));
            if (!end.killed) unreached.push(b);
            note(`killed at boundary ${b} of ${reference.boundaries}`, await recover(runId));
          });
          // Racing steps may pass fewer boundaries in one run than in another; every other scenario reaches them all.
          if (!sc.racing) expect(unreached, 'boundaries not reached').toEqual([]);
          await inPairs(
            Array.from({ length: backend.random + SOAK }, (_, r) => r),
            async (r) => {
              const runId = `r${r}`;
              // A chain of kills at random instants, each process picking up where the last died.
              for (let k = 0; k < 3; k++) await play(runId, `after:${Math.floor(Math.random() * 60)}`);
              note(`random kills, run ${r}`, await recover(runId));
            },
          );
          const report = await store.verify();
          if (!report.ok) note('verify of the whole store', [JSON.stringify(report)]);
        } finally {
          await store.close();
          ledger.close();
        }
        expect(found).toEqual({});
        rmSync(dir, { recursive: true, force: true });
      },
    );
  });
}

/** Two at a time: one child process runs while this process picks up the run the last one left. */
async function inPairs<T>(items: T[], each: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await each(items[next++] as T);
  };
  await Promise.all([lane(), lane()]);
}
