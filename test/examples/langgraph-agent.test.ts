import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../support/temp.js';

const run = promisify(execFile);

describe('examples/langgraph-agent', () => {
  it('runs as documented on a SQLite file: time travel leaves the original branch whole, the rollback is audited', async () => {
    const file = join(tempDir('rewind-lg-example-'), 'agent.db');
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/langgraph-agent.ts', `sqlite:${file}`], {
      timeout: 60_000,
    });
    expect(stdout).toContain("the original branch is untouched: [\n  'book a flight in Lisbon',\n  'find a hotel in Lisbon',");
    expect(stdout).toMatch(/rolled back 2 checkpoints/);
    expect(stdout).toContain("'take the tram in Porto'");
    expect(stdout).toMatch(/rolledBack/);
    expect(stdout).toContain('ok: true');
  });
});
