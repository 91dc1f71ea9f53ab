import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, expect, it, vi } from 'vitest';
import { NotFoundError } from '../../src/events/errors.js';
import { registerProjectionCommands } from '../../src/surfaces/cli/commands/projections.js';
import { openTestStore, removeTempDirs, tempDir } from './helpers.js';

afterEach(() => {
  vi.restoreAllMocks();
  removeTempDirs();
});

function program(): Command {
  const p = new Command('rewind').option('--db <url>').option('--json').exitOverride();
  registerProjectionCommands(p);
  return p;
}

async function cli(args: string[]): Promise<string> {
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => {
    out += `${parts.join(' ')}\n`;
  });
  try {
    await program().parseAsync(args, { from: 'user' });
  } finally {
    vi.restoreAllMocks();
  }
  return out;
}

it('status and rebuild, with the built-in projections plus a module of our own', async () => {
  const dir = tempDir();
  const db = join(dir, 'rewind.db');
  const store = await openTestStore('sqlite', db);
  await store.append('run-1', [{ type: 'RunStarted', data: { runId: '1', workflow: 'w', workflowVersion: '1', input: null } }]);
  await store.append('other', [{ type: 'Noted', data: {} }]);
  await store.close();
  const module = join(dir, 'mine.ts');
  writeFileSync(
    module,
    `export const projections = [{ name: 'mine', version: 1, key: (e) => e.streamId, evolve: (d) => ({ n: (d?.n ?? 0) + 1 }) }];\n`,
  );

  const before = JSON.parse(await cli(['--db', db, '--json', 'projections', '--projections', module, 'status']));
  expect(before.map((s: { name: string }) => s.name)).toEqual(['runs', 'tool-steps', 'checkpoints', 'rollbacks', 'mine']);
  expect(before[4]).toMatchObject({ position: 0, head: 2, lagEvents: 2, state: 'ok' });

  const rebuilt = JSON.parse(await cli(['--db', db, '--json', 'projections', '--projections', module, 'rebuild', 'mine']));
  expect(rebuilt).toMatchObject({ projection: 'mine', rebuilt: true, positions: 2 });
  const after = JSON.parse(await cli(['--db', db, '--json', 'projections', '--projections', module, 'status']));
  expect(after[4]).toMatchObject({ position: 2, lagEvents: 0 });

  const human = await cli(['--db', db, 'projections', 'status']);
  expect(human).toMatch(/runs\s+async\s+2\s+ok\s+0\s+2/);

  await expect(cli(['--db', db, 'projections', 'rebuild', 'nope'])).rejects.toBeInstanceOf(NotFoundError);
});
