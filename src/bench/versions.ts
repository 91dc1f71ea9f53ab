import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** The installed version of a package, or '' (its package.json may not be exported, so walk up from its entry point). */
export function versionOf(pkg: string): string {
  try {
    let dir = dirname(require.resolve(pkg));
    for (let i = 0; i < 5; i++, dir = dirname(dir)) {
      try {
        const json = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (json.name === pkg) return json.version ?? '';
      } catch {
        // not here
      }
    }
  } catch {
    // not installed
  }
  return '';
}
