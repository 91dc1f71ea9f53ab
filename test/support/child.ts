import { spawn } from 'node:child_process';

/**
 * Runs a TypeScript fixture in a real child process and kills it with SIGKILL:
 * `ms` after it prints "ready", or as soon as it prints "compensating" (the
 * middle of a rollback), or never (undefined). Resolves with 'killed' or the
 * child's last line.
 */
export function runChild(script: string, args: string[], kill: number | 'compensating' | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (kill === 'compensating' && out.includes('compensating')) child.kill('SIGKILL');
      if (typeof kill === 'number' && out.startsWith('ready') && !child.killed) setTimeout(() => child.kill('SIGKILL'), kill);
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve('killed');
      else if (code === 0) resolve(out.trim().split('\n').at(-1) ?? '');
      else reject(new Error(`child exited ${code}: ${err}`));
    });
  });
}
