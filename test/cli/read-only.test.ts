// An archived audit copy: a SQLite file the user may read and not write. Every
// command that only reads works on it and leaves it byte for byte as it was;
// a command that writes is refused with a typed error and writes nothing.
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/temp.js';
import { runCli } from './run-cli.js';

/** Root writes any file whatever its mode: the commands then run as `nobody`, for whom the mode holds. */
const asRoot = process.getuid?.() === 0;
const NOBODY = 65534;

const rewind = (args: string[], user: 'owner' | 'reader' = 'reader') =>
  runCli(args, { cwd: dir, ...(user === 'reader' && asRoot ? { uid: NOBODY, gid: NOBODY } : {}) });

const dir = tempDir('rewind-read-only-');
/** The archive: its directory writable by the reader (SQLite keeps its WAL index beside the file), the file not. */
const archive = join(dir, 'archive', 'audit.db');
/** The same file alone in a directory the reader may not write either. */
const sealed = join(dir, 'sealed', 'audit.db');
/** A copy the reader may write, in a directory of its own. */
const plain = join(dir, 'plain', 'audit.db');
const digest = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
let before: string;

beforeAll(async () => {
  chmodSync(dir, 0o755);
  for (const sub of ['archive', 'sealed', 'plain']) mkdirSync(join(dir, sub));
  const made = join(dir, 'made.db');
  for (let i = 0; i < 2; i++) expect((await rewind(['demo', '--db', made], 'owner')).code).toBe(0);
  expect((await rewind(['rollback', 'travel-2', '--to', 'planned', '--reason', 'audit me', '--db', made], 'owner')).code).toBe(0);
  // Closed cleanly: the file holds everything (no -wal beside it), as an archived copy does.
  for (const target of [archive, sealed]) {
    copyFileSync(made, target);
    chmodSync(target, 0o444);
  }
  copyFileSync(made, plain);
  if (asRoot) for (const writable of [join(dir, 'archive'), join(dir, 'plain'), plain]) chownSync(writable, NOBODY, NOBODY);
  else chmodSync(join(dir, 'sealed'), 0o555);
  before = digest(archive);
});

describe('read-only commands on a file the user may not write', () => {
  it('list, show, verify, read, travel in time and report projections, changing nothing', async () => {
    const db = ['--db', archive];
    const runs = await rewind(['runs', ...db, '--json']);
    expect(runs.code, runs.stderr).toBe(0);
    // Folded from the log (no read model can be brought up to date here), with the stored model's values.
    expect(
      (JSON.parse(runs.stdout) as { runId: string; status: string; rollbacks: number }[]).map((r) => [r.runId, r.status, r.rollbacks]),
    ).toEqual([
      ['travel-2', 'rolled_back', 2],
      ['travel-1', 'completed', 1],
    ]);
    expect((await rewind(['runs', '--status', 'completed', ...db, '--json'])).stdout).not.toContain('travel-2');

    const show = await rewind(['show', 'travel-2', ...db]);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain('to "planned" (v2): audit me');

    const verify = await rewind(['verify', ...db, '--json']);
    expect(verify.code, verify.stderr).toBe(0);
    // Two runs, and the inbox of the one rolled back: the request and the note that its driver carried it out.
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, events: 73, streams: 3 });
    expect((await rewind(['events', 'run-travel-1', '--limit', '2', ...db])).code).toBe(0);
    expect((await rewind(['streams', ...db, '--json'])).stdout).toContain('"run-travel-2"');
    const state = await rewind(['state', 'travel-1', '--at', 'planned', ...db, '--json']);
    expect(JSON.parse(state.stdout)).toMatchObject({ version: 2, state: { triedHotels: [] } });
    const diff = await rewind(['diff', 'travel-1', 'travel-2', ...db, '--json']);
    expect(diff.code, diff.stderr).toBe(0);
    const status = await rewind(['projections', 'status', ...db, '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect((JSON.parse(status.stdout) as { name: string; position: number; lagEvents: number }[])[0]).toMatchObject({
      name: 'runs',
      position: 0,
      lagEvents: 73,
    });

    expect(digest(archive)).toBe(before);
  });

  it('leave the directory as they found it: no -wal or -shm beside the file, whether the file may be written or not', async () => {
    // replay loads its workflows with the repository's tsx; the completed runs have no code there, which only running ones need.
    const replay = (file: string) =>
      runCli(['replay', '--db', file, '--workflows', 'test/cli/fixtures/refund-workflow.ts', '--runs', 'completed'], {
        ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}),
      });
    for (const file of [archive, plain]) {
      const before = digest(file);
      for (const args of [['show', 'travel-1'], ['verify'], ['state', 'travel-1', '--at', 'planned'], ['export', 'travel-2']]) {
        const out = await rewind([...args, '--db', file]);
        expect(out.code, `${args[0]} ${out.stderr}`).toBe(0);
      }
      const replayed = await replay(file);
      expect(replayed.code, replayed.stdout + replayed.stderr).toBe(0);
      if (file === archive) expect((await rewind(['runs', '--db', file])).code).toBe(0);
      expect(readdirSync(join(file, '..'))).toEqual(['audit.db']);
      expect(digest(file)).toBe(before);
    }
  });

  it('refuse a command that writes, with a typed error, and write nothing', async () => {
    const refused = await rewind(['rollback', 'travel-1', '--to', 'planned', '--reason', 'x', '--db', archive, '--json']);
    expect(refused.code).toBe(5);
    expect(JSON.parse(refused.stderr).error).toEqual({
      code: 'STORE_READ_ONLY',
      message: 'cannot append: this process may not write the SQLite file (or its directory)',
      hint: 'this command writes: run it where the file and its directory are writable, or on a writable copy',
    });
    expect(digest(archive)).toBe(before);
  });

  it('say what to do when the directory is read-only too (SQLite needs its WAL index beside the file)', async () => {
    const sealedRead = await rewind(['verify', '--db', sealed]);
    expect(sealedRead.code).toBe(5);
    expect(sealedRead.stderr).toBe(
      [
        `error cannot read the SQLite store ${sealed} in place: its directory is read-only and SQLite needs to create audit.db-shm beside it`,
        '  copy the file into a writable directory and read the copy',
        '',
      ].join('\n'),
    );
  });
});
