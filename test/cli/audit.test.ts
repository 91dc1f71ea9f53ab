import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openStore } from '../../src/store/open.js';
import { main } from '../../src/surfaces/cli/main.js';
import { tempDir } from '../support/temp.js';

const root = join(import.meta.dirname, '../..');

/** The CLI in this process: its exit code and what it printed. */
async function rewind(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => {
    stdout += `${parts.join(' ')}\n`;
  });
  for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
  process.exitCode = undefined;
  try {
    const code = await main(args);
    return { code, stdout, stderr };
  } finally {
    process.exitCode = undefined;
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  }
}

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

const noKeys = { REWIND_SIGNING_KEY: undefined, REWIND_PUBLIC_KEY: undefined };

describe('rewind keygen, seal, digest, verify, prove and check-proof', () => {
  it('keeps a log provable from outside the database, and names what an edit broke', { timeout: 30_000 }, async () => {
    const dir = tempDir('rewind-cli-audit-');
    const db = join(dir, 'rewind.db');
    const key = join(dir, 'signing.pem');
    const store = await openStore(`sqlite:${db}`);
    const placed = await store.append('order-1', [{ type: 'Placed', data: { total: 90 } }]);
    await store.append('order-2', [{ type: 'Placed', data: { total: 15 } }]);
    await store.close();

    // Given a key pair made by the CLI: the private half readable by its owner only, never overwritten.
    const keygen = await rewind(['keygen', '--out', key, '--json'], noKeys);
    expect(keygen.code, keygen.stderr).toBe(0);
    const { keyId, publicKey } = JSON.parse(keygen.stdout);
    expect(publicKey).toBe(join(dir, 'signing.pub.pem'));
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect((await rewind(['keygen', '--out', key], noKeys)).stderr).toContain('it exists already');

    // When the log is sealed with the key from the environment, and a digest kept beside it:
    const seal = await rewind(['seal', '--db', db], { REWIND_SIGNING_KEY: key });
    expect(seal.stdout).toBe('✓ sealed 2 events up to position 2 (2 streams changed); the seal is at position 3\n');
    await rewind(['--db', db, 'digest', '--key', key, '--out', join(dir, 'digest.json')], noKeys);
    expect(JSON.parse(readFileSync(join(dir, 'digest.json'), 'utf8')).treeHead).toMatchObject({ size: 3, position: 3, keyId });

    // Then the untouched log verifies against both, with the public key alone.
    const clean = await rewind(['verify', '--db', db, '--digest', join(dir, 'digest.json'), '--public-key', publicKey], noKeys);
    expect(clean.code).toBe(0);
    expect(clean.stdout).toMatch(
      /^✓ 3 events in 3 streams up to position 3: everything holds · 1 seal verified up to position 2 · the digest \(position 3, 3 events, signature valid\)/,
    );

    // And one event is proved to someone holding the public key and the proof only.
    const proof = join(dir, 'proof.json');
    expect((await rewind(['prove', placed.events[0]!.id, '--db', db, '--out', proof], noKeys)).code).toBe(0);
    const checked = await rewind(['check-proof', proof, '--public-key', publicKey], noKeys);
    expect(checked.code).toBe(0);
    expect(checked.stdout).toContain(
      `✓ event ${placed.events[0]!.id} (order-1@1, Placed, position 1) is in the log of 2 events up to position 2`,
    );
    const forged = JSON.parse(readFileSync(proof, 'utf8'));
    forged.event.data.total = 9;
    writeFileSync(join(dir, 'forged.json'), JSON.stringify(forged));
    const refused = await rewind(['check-proof', join(dir, 'forged.json'), '--public-key', publicKey], noKeys);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain('is not leaf 0 of the signed tree');

    // When one byte breaks an event's JSON and the newest event of the log is deleted:
    const file = new Database(db);
    file.prepare('UPDATE events SET data = \'z"total":90}\' WHERE position = 1').run();
    file.prepare('DELETE FROM events WHERE position = 3').run();
    file.close();

    // Then verify, in a real process, exits 1 and names both, with no stack trace.
    const run = promisify(execFile);
    const tampered = await run(
      process.execPath,
      ['--import', 'tsx', 'src/surfaces/cli/bin.ts', 'verify', '--db', db, '--digest', join(dir, 'digest.json'), '--public-key', publicKey],
      { cwd: root, env: { ...process.env, NO_COLOR: '1', REWIND_SIGNING_KEY: '' } },
    ).then(
      () => ({ code: 0, stdout: '', stderr: '' }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(tampered.code).toBe(1);
    expect(tampered.stderr).toBe('');
    expect(tampered.stdout.split('\n')).toEqual([
      '✗ 3 problems in 2 events in 3 streams up to position 2 · the digest (position 3, 3 events, signature valid)',
      `  undecodable       order-1@1 position 1: the row cannot be read as an event: its data is not JSON (Unexpected token 'z', "z"total":90}" is not valid JSON)`,
      '  missing-events    $rewind-seals@1 position 3: version 1 is missing at or before position 3; the digest recorded version 1 at position 3: deleted',
      // The newest event was the seal: its stream is left empty.
      '  empty-stream      $rewind-seals@1: the stream was begun but holds no event: all its events were deleted',
      '',
    ]);
    const json = JSON.parse((await rewind(['verify', '--db', db, '--json'], noKeys)).stdout);
    expect(json).toMatchObject({
      ok: false,
      problemCount: 2,
      problems: [
        { kind: 'undecodable', streamId: 'order-1', version: 1, position: 1 },
        { kind: 'empty-stream', streamId: '$rewind-seals' },
      ],
    });

    // And a log that does not verify is not signed.
    const refusedDigest = await rewind(['digest', '--db', db, '--key', key], noKeys);
    expect(refusedDigest.code).toBe(1);
    expect(refusedDigest.stderr).toContain('the log does not verify, so it was not signed');
    expect(existsSync(join(dir, 'digest-2.json'))).toBe(false);
  });

  it('says what is missing: a key, a readable digest; and explains every command', async () => {
    const dir = tempDir('rewind-cli-audit-');
    const db = join(dir, 'rewind.db');
    // An empty log: verify opens a file read-only, and so never creates one.
    await (await openStore(`sqlite:${db}`)).close();
    const noKey = await rewind(['seal', '--db', db], noKeys);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain('error no signing key\n  pass --key FILE or set REWIND_SIGNING_KEY');
    const notAKey = await rewind(['digest', '--db', db], {
      REWIND_SIGNING_KEY: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----',
    });
    expect(notAKey.code).toBe(2);
    writeFileSync(join(dir, 'bad.json'), '{"treeHead": 1}');
    const badDigest = await rewind(['verify', '--db', db, '--digest', join(dir, 'bad.json')], noKeys);
    expect(badDigest.code).toBe(2);
    expect(badDigest.stderr).toContain('the digest is not a Rewind digest');
    for (const command of ['verify', 'keygen', 'digest', 'seal', 'prove', 'check-proof']) {
      const help = await rewind([command, '--help']);
      expect(help.code, command).toBe(0);
      expect(help.stdout, command).toContain('Examples:');
    }
  });
});
