import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

// dist/ in the repository: the compiled package and the prebuilt debugger. Nothing builds it on `npm install`
// (a consumer's install runs no script of ours: the tarball carries dist/, built by `prepack`), so what needs it
// builds it here first: the test run (vitest's global setup) and `npm run demo`.

const ROOT = fileURLToPath(new URL('../', import.meta.url));
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
 * Rebuilds whichever of dist/ (tsc) and dist/web (vite) is missing or older than its sources, so nothing that
 * runs the compiled package (bin/rewind.js, the packed tarball, the guides' code blocks) meets a stale one.
 */
export async function buildIfStale(): Promise<void> {
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

// Run as a script (`tsx scripts/build-if-stale.ts`, as `npm run demo` does).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await buildIfStale();
