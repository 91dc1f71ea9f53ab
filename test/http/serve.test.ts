import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { registerServeCommand } from '../../src/surfaces/cli/commands/serve.js';
import { problemOf } from '../../src/surfaces/cli/errors.js';
import { HttpConfigError } from '../../src/surfaces/http/errors.js';
import { ADMIN } from './helpers.js';

function program(): Command {
  const p = new Command('rewind').option('--db <url>').option('--json').exitOverride();
  registerServeCommand(p);
  return p;
}

describe('rewind serve', () => {
  let dir: string;
  let output: string[];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rewind-serve-'));
    output = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      output.push(String(chunk));
      return true;
    });
    vi.spyOn(console, 'log').mockImplementation((...args) => void output.push(`${args.join(' ')}\n`));
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    delete process.env.REWIND_ADMIN_TOKEN;
    await rm(dir, { recursive: true, force: true });
  });

  async function urlPrinted(): Promise<string> {
    await expect.poll(() => output.join('').match(/http:\/\/[^\s"]+/)?.[0], { timeout: 10_000 }).toBeTruthy();
    return output.join('').match(/http:\/\/[^\s"]+/)?.[0] as string;
  }

  it('serves a SQLite file, prints the URL, and closes cleanly on SIGTERM', async () => {
    const running = program().parseAsync(['--db', `sqlite:${join(dir, 'r.db')}`, 'serve', '--port', '0'], { from: 'user' });
    const url = await urlPrinted();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${url}/streams/s/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ events: [{ type: 'T', data: 1 }] }),
    });
    expect(res.status).toBe(200);
    const { projections } = await (await fetch(`${url}/projections`)).json();
    expect(projections.map((p: { name: string }) => p.name)).toContain('runs');
    process.emit('SIGTERM', 'SIGTERM');
    await running;
    await expect(fetch(`${url}/health`)).rejects.toThrow();
  });

  it('serves the runs of the workflows in a --workflows module', async () => {
    const module = join(import.meta.dirname, 'fixtures', 'trip-workflows.ts');
    const running = program().parseAsync(['--db', 'memory:', 'serve', '--port', '0', '--workflows', module], { from: 'user' });
    const url = await urlPrinted();
    const started = await fetch(`${url}/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ workflow: 'trip', input: { hotel: 'H' }, runId: 'cli' }),
    });
    expect(started.status).toBe(202);
    await expect.poll(async () => (await (await fetch(`${url}/runs/cli`)).json()).status).toBe('completed');
    process.emit('SIGINT', 'SIGINT');
    await running;
  });

  it('reads the admin token from the environment and prints JSON with --json', async () => {
    process.env.REWIND_ADMIN_TOKEN = ADMIN;
    const running = program().parseAsync(['--db', 'memory:', '--json', 'serve', '--port', '0'], { from: 'user' });
    const url = await urlPrinted();
    expect(JSON.parse(output.join(''))).toEqual({ url, auth: true });
    expect((await fetch(`${url}/streams`)).status).toBe(401);
    expect((await fetch(`${url}/streams`, { headers: { authorization: `Bearer ${ADMIN}` } })).status).toBe(200);
    process.emit('SIGINT', 'SIGINT');
    await running;
  });

  it('refuses to listen on 0.0.0.0 without a token, and the CLI says which flags fix it', async () => {
    const refused = await program()
      .parseAsync(['--db', 'memory:', 'serve', '--host', '0.0.0.0', '--port', '0'], { from: 'user' })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(HttpConfigError);
    // The library's hint names startServer's options; the CLI prints its own, naming flags.
    expect(refused).toMatchObject({
      problem: 'exposed',
      hint: "give tokens: { admin } (and read for read-only clients), or listen on host '127.0.0.1'",
    });
    expect(problemOf(refused)).toEqual({
      code: 'HTTP_CONFIG',
      message: 'refusing to listen on 0.0.0.0 without tokens: anyone who can reach it could read and rewrite the log',
      hint: 'set an admin token (--token-admin or REWIND_ADMIN_TOKEN), or listen on loopback (--host 127.0.0.1)',
    });
  });

  it('refuses one token given as both admin and read, naming the two flags', async () => {
    const token = 'x'.repeat(32);
    const refused = await program()
      .parseAsync(['--db', 'memory:', 'serve', '--port', '0', '--token-admin', token, '--token-read', token], { from: 'user' })
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({ problem: 'token-reused', hint: 'give tokens.admin and tokens.read different tokens' });
    expect(problemOf(refused).hint).toBe(
      'give --token-admin and --token-read (or REWIND_ADMIN_TOKEN and REWIND_READ_TOKEN) different tokens',
    );
  });

  it('refuses a bad port or body limit as a usage error', async () => {
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    await expect(program().parseAsync(['serve', '--port', 'http'], { from: 'user' })).rejects.toMatchObject({
      code: 'commander.invalidArgument',
    });
    await expect(program().parseAsync(['serve', '--body-limit', 'lots'], { from: 'user' })).rejects.toMatchObject({
      code: 'commander.invalidArgument',
    });
  });
});
