import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { build } from 'esbuild';

const ROOT = join(import.meta.dirname, '../..');

/**
 * The child compiled once into one file (our sources bundled, packages left
 * to node_modules): a crash test starts hundreds of processes, and each then
 * starts in a tenth of the time tsx would take to compile it again.
 */
export async function bundleChild(entry = join(import.meta.dirname, 'child.ts')): Promise<string> {
  const outdir = join(ROOT, `.tmp/torture/child-${process.pid}-${basename(entry, '.ts')}`);
  mkdirSync(outdir, { recursive: true });
  await build({
    entryPoints: [entry],
    bundle: true,
    // Dynamic imports stay lazy: a child on SQLite never loads the PostgreSQL driver.
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    outdir,
    outExtension: { '.js': '.mjs' },
    logLevel: 'error',
  });
  return join(outdir, `${basename(entry, '.ts')}.mjs`);
}

/** A child that ran to its end reports how many boundaries it passed, and how many came before the first rollback request. */
export type ChildEnd = { killed: true } | { killed: false; boundaries: number; protocol: number };

/** Runs the child to its end or its kill; a child that fails otherwise rejects with its stderr. */
export function runChild(script: string, args: string[]): Promise<ChildEnd> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') return resolve({ killed: true });
      const counted = /boundaries (\d+) protocol (\d+)/.exec(out);
      if (code === 0 && counted) return resolve({ killed: false, boundaries: Number(counted[1]), protocol: Number(counted[2]) });
      reject(new Error(`child ${args.join(' ')} exited ${code ?? signal}: ${err || out}`));
    });
  });
}
