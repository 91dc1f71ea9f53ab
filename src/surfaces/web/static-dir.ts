import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where the prebuilt web debugger is: `dist/web` of this package, found from
 * this module whether it runs compiled (dist/src/surfaces/web/static-dir.js)
 * or from source under tsx (src/surfaces/web/static-dir.ts). Undefined when
 * it was not built (`npm run build:web`): the API is then served alone.
 */
export function webDir(): string | undefined {
  for (const candidate of ['../../../web/', '../../../dist/web/']) {
    const dir = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  return undefined;
}
