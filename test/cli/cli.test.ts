import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { databaseUrl, uniqueSchema } from '../support/postgres.js';
import { runCli as rewind } from './run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'rewind-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const backends: [string, () => string][] = [
  ['sqlite', () => `sqlite:${join(dir, `cli-${Date.now()}.db`)}`],
  ['postgres', () => `${databaseUrl()}?schema=${uniqueSchema()}`],
];

describe.each(backends)('rewind CLI on %s', (_name, makeUrl) => {
  it('runs the demo, lists it, shows its timeline, verifies and rolls it back', { timeout: 60_000 }, async () => {
    const db = makeUrl();
    const demo = await rewind(['demo', '--db', db, '--json']);
    expect(demo.code, demo.stderr).toBe(0);
    const { runId, status, timeline } = JSON.parse(demo.stdout);
    expect(status).toBe('completed');
    expect(timeline.some((t: { type: string; undone: boolean }) => t.type === 'RolledBack' && !t.undone)).toBe(true);

    const runs = await rewind(['runs', '--db', db, '--json']);
    expect(runs.code).toBe(0);
    expect(JSON.parse(runs.stdout)).toEqual([expect.objectContaining({ runId, workflow: 'travel', status: 'completed' })]);

    const show = await rewind(['show', runId, '--db', db]);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('RolledBack');
    expect(show.stdout).toMatch(/↶ CompensationCompleted +charge-card/);

    const verify = await rewind(['verify', '--db', db, '--json']);
    expect(verify.code).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, streams: 1 });

    const rollback = await rewind(['rollback', runId, '--to', 'planned', '--reason', 'from the test', '--db', db, '--json']);
    expect(rollback.code, rollback.stderr).toBe(0);
    expect(JSON.parse(rollback.stdout)).toMatchObject({ status: 'rolled_back' });
    const after = JSON.parse((await rewind(['show', runId, '--db', db, '--json'])).stdout);
    const compensated = after.timeline
      .filter((t: { type: string }) => t.type === 'CompensationCompleted')
      .map((t: { summary: string }) => t.summary);
    // The second rollback undoes the second path, newest step first.
    expect(compensated.slice(-3)).toEqual(['book-hotel', 'charge-card', 'book-flight']);
    // The runs read model caught up with the rollback.
    const listed = JSON.parse((await rewind(['runs', '--db', db, '--json'])).stdout);
    expect(listed).toEqual([expect.objectContaining({ runId, status: 'rolled_back', rollbacks: 2 })]);
  });
});

describe.each(backends)('rewind time travel from the CLI on %s', (_name, makeUrl) => {
  it('shows state at a version and a label, forks, and diffs the fork', { timeout: 60_000 }, async () => {
    const db = makeUrl();
    const { runId } = JSON.parse((await rewind(['demo', '--db', db, '--json'])).stdout);

    const at9 = await rewind(['state', runId, '--at', '9', '--db', db, '--json']);
    expect(at9.code, at9.stderr).toBe(0);
    // v9 is the first, rolled-back attempt: its state as the log stood then.
    expect(JSON.parse(at9.stdout)).toMatchObject({ version: 9, type: 'HotelChosen', state: { triedHotels: ['Grand Hotel'] } });
    const planned = JSON.parse((await rewind(['state', runId, '--at', 'planned', '--db', db, '--json'])).stdout);
    expect(planned).toMatchObject({ version: 2, state: { triedHotels: [] } });

    const fork = await rewind(['fork', runId, '--at', '2', '--id', 'what-if', '--db', db, '--json']);
    expect(fork.code, fork.stderr).toBe(0);
    expect(JSON.parse(fork.stdout)).toMatchObject({ runId: 'what-if', status: 'completed' });
    const diff = await rewind(['diff', runId, 'what-if', '--db', db, '--json']);
    expect(diff.code).toBe(0);
    expect(JSON.parse(diff.stdout)).toMatchObject({ sharesNothing: false, a: { runId }, b: { runId: 'what-if' } });

    const past = await rewind(['fork', runId, '--at', '999', '--db', db]);
    expect(past.code).toBe(2);
    expect(past.stderr).toContain('the run has 31 events');
    expect((await rewind(['state', runId, '--at', '999', '--db', db])).code).toBe(3);
    expect((await rewind(['state', runId, '--at', 'nowhere', '--db', db])).code).toBe(3);
    expect((await rewind(['fork', runId, '--input', '{not json', '--db', db])).code).toBe(2);
  });
});

describe('rewind CLI exit codes and bad input', () => {
  const db = () => `sqlite:${join(dir, 'codes.db')}`;

  it('says what was wrong and exits 2 for bad arguments, 3 for unknown runs', async () => {
    const unknownStatus = await rewind(['runs', '--status', 'bogus', '--db', db()]);
    expect(unknownStatus.code).toBe(2);
    expect(unknownStatus.stderr).toContain('unknown status "bogus"');

    const missingReason = await rewind(['rollback', 'x', '--to', 'planned', '--db', db()]);
    expect(missingReason.code).toBe(2);
    expect(missingReason.stderr).toContain("required option '--reason <text>'");

    const unknownRun = await rewind(['show', 'no-such-run', '--db', 'memory:']);
    expect(unknownRun.code).toBe(3);
    expect(unknownRun.stderr).toContain('run "no-such-run" does not exist');

    // Commands that only read open a SQLite file read-only, and so never create one.
    const noFile = await rewind(['show', 'no-such-run', '--db', join(dir, 'never-made.db')]);
    expect(noFile.code).toBe(5);
    expect(noFile.stderr).toContain(`${join(dir, 'never-made.db')} does not exist`);

    const unknownCommand = await rewind(['frobnicate']);
    expect(unknownCommand.code).toBe(2);
  });

  it('refuses a rollback to a label the run never reached, and writes nothing', async () => {
    const demo = JSON.parse((await rewind(['demo', '--db', db(), '--json'])).stdout);
    const before = JSON.parse((await rewind(['show', demo.runId, '--db', db(), '--json'])).stdout).version;
    const bad = await rewind(['rollback', demo.runId, '--to', 'nowhere', '--reason', 'x', '--db', db()]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain('no checkpoint "nowhere"');
    expect(JSON.parse((await rewind(['show', demo.runId, '--db', db(), '--json'])).stdout).version).toBe(before);
  });

  it('exits 5 when the store cannot be opened', async () => {
    const notADb = await rewind(['runs', '--db', `sqlite:${dir}`]);
    expect(notADb.code).toBe(5);
    const unknownScheme = await rewind(['runs', '--db', 'mysql://x']);
    expect(unknownScheme.code).toBe(5);
  });

  it('verify exits 1 and names the broken link when an event was edited in the file', async () => {
    const file = join(dir, 'tampered.db');
    const demo = JSON.parse((await rewind(['demo', '--db', file, '--json'])).stdout);
    const db = new Database(file);
    db.prepare("UPDATE events SET data = json_set(data, '$.booking', 'FL-forged') WHERE stream_id = ? AND version = 23").run(
      `run-${demo.runId}`,
    );
    db.close();
    const verify = await rewind(['verify', '--db', file]);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toMatch(new RegExp(`hash-mismatch +run-${demo.runId}@23 position \\d+: the stored hash is not the link`));
  });

  it('prints help with examples on every command', async () => {
    for (const command of [
      'demo',
      'runs',
      'show',
      'state',
      'diff',
      'fork',
      'rollback',
      'retry',
      'resolve',
      'cancel',
      'resume',
      'verify',
      'streams',
      'events',
    ]) {
      const help = await rewind([command, '--help']);
      expect(help.code, command).toBe(0);
      expect(help.stdout, command).toContain('Examples:');
    }
  });
});
