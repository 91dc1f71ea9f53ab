import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

export interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Working directory (default the repository). */
  cwd?: string;
  env?: Record<string, string>;
  /** Run as another user (needs root). */
  uid?: number;
  gid?: number;
}

/** The CLI as installed (bin/rewind.js over dist/) in its own process: stdout, stderr and the exit code a script would see. */
export async function runCli(args: string[], { cwd = ROOT, env = {}, ...user }: CliOptions = {}): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(ROOT, 'bin/rewind.js'), ...args], {
      cwd,
      env: { ...process.env, NO_COLOR: '1', ...env },
      ...user,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as Outcome;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
