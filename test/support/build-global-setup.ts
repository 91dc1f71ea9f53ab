import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WEB = join(ROOT, 'src/surfaces/web');

/** The newest modification time under a path (a file, or a directory walked whole), skipping `skip`. */
function newest(path: string, skip: string[] = []): number {
  if (skip.includes(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newest(join(path, name), skip)));
}

const builtAt = (file: string) => (existsSync(file) ? statSync(file).mtimeMs : 0);

/**
 * Some tests run what a user runs: the compiled package (bin/rewind.js, the
 * packed tarball, README snippets importing `rewind-runtime`) and the prebuilt
 * debugger. `npm install` builds both; this rebuilds whichever is older than
 * its sources, once, before any test starts, so a test never meets a stale dist/.
 */
export default async function setup(): Promise<void> {
  const run = promisify(execFile);
  const sources = Math.max(
    newest(join(ROOT, 'src'), [join(WEB, 'app')]),
    newest(join(ROOT, 'examples')),
    newest(join(ROOT, 'tsconfig.json')),
    newest(join(ROOT, 'tsconfig.build.json')),
  );
  const compile = async () => {
    if (builtAt(join(ROOT, 'dist/src/index.js')) >= sources) return;
    await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT });
  };
  // The debugger's bundle holds the run model it shares with the runtime (src/runtime/model and what it imports),
  // read from the sources: it is built beside the compile, not after it.
  const bundle = async () => {
    if (builtAt(join(ROOT, 'dist/web/index.html')) >= newest(join(ROOT, 'src'))) return;
    const { build } = await import('vite');
    await build({ configFile: join(WEB, 'vite.config.ts'), logLevel: 'warn' });
  };
  await Promise.all([compile(), bundle()]);
}
