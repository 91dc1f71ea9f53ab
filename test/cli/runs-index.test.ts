import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { RunEvents, runStreamId } from '../../src/runtime/index.js';
import { openStore } from '../../src/store/open.js';
import { tempDir } from '../support/temp.js';
import { runCli as rewind } from './run-cli.js';

/** A log of 1,500 runs (every third completed), started in id order a few at a time, so 'oldest' is id order. */
async function seed(file: string): Promise<void> {
  const store = await openStore(`sqlite:${file}`);
  for (let i = 0; i < 1500; i += 250)
    await store.appendMany(
      Array.from({ length: 250 }, (_, k) => {
        const runId = `r${String(i + k).padStart(4, '0')}`;
        return {
          streamId: runStreamId(runId),
          events: [
            { type: RunEvents.RunStarted, data: { runId, workflow: 'w', workflowVersion: '1', input: null } },
            ...((i + k) % 3 === 0 ? [{ type: RunEvents.RunCompleted, data: { output: null } }] : []),
          ],
        };
      }),
    );
  await store.close();
}

describe('rewind runs over the runs index', () => {
  it('pages in the order asked, printing where the next page starts on stderr', async () => {
    const file = join(tempDir('rewind-cli-runs-'), 'log.db');
    await seed(file);
    const first = await rewind(['runs', '--db', `sqlite:${file}`, '--status', 'completed', '--order', 'oldest', '--limit', '2', '--json']);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout).map((r: { runId: string }) => r.runId)).toEqual(['r0000', 'r0003']);
    const cursor = /--after '([^']+)' --order oldest/.exec(first.stderr)?.[1];
    expect(cursor).toBeDefined();
    const second = await rewind([
      'runs',
      '--db',
      `sqlite:${file}`,
      '--status',
      'completed',
      '--order',
      'oldest',
      '--limit',
      '2',
      '--after',
      cursor as string,
      '--json',
    ]);
    expect(JSON.parse(second.stdout).map((r: { runId: string }) => r.runId)).toEqual(['r0006', 'r0009']);

    const bad = await rewind(['runs', '--db', `sqlite:${file}`, '--order', 'sideways']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown order "sideways"');
  });

  it('indexes a log written before the index once, telling its progress on stderr', async () => {
    const file = join(tempDir('rewind-cli-runs-'), 'log.db');
    await seed(file);
    const db = new Database(file);
    db.exec('DELETE FROM runs; UPDATE run_index_state SET built = 0;');
    db.close();
    const listed = await rewind(['runs', '--db', `sqlite:${file}`, '--status', 'running', '--limit', '1', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stderr).toContain('indexing runs (once, for a log written before the runs index): 1,000 / 1,500');
    expect(listed.stderr).toContain('1,500 / 1,500');
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ runId: 'r1499', status: 'running' })]); // newest first
    const again = await rewind(['runs', '--db', `sqlite:${file}`, '--limit', '1', '--json']);
    expect(again.stderr).not.toContain('indexing');
  });
});
