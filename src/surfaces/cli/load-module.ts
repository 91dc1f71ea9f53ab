import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ValidationError } from '../../events/errors.js';

const TYPESCRIPT = /\.[cm]?tsx?$/;

/**
 * Imports the user's module named by --workflows or --projections. A
 * TypeScript file works when Node can load it already (Node with type
 * stripping, or `node --import tsx`); otherwise Rewind registers the tsx
 * loader of the user's project, and says how when there is none.
 */
export async function importUserModule(path: string, option: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(resolve(path)).href;
  try {
    return await import(url);
  } catch (error) {
    if (!TYPESCRIPT.test(path) || (error as { code?: string }).code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw unloadable(path, option, error);
  }
  if (!(await registerTsx())) {
    throw new ValidationError(
      `${option} ${path} is TypeScript, which this Node.js does not load by itself`,
      [],
      'install tsx in your project (npm install --save-dev tsx) and Rewind loads it with tsx, or pass the compiled JavaScript module',
    );
  }
  try {
    // Another URL for the same file: Node keeps the failed first load under the plain one.
    return await import(`${url}?typescript`);
  } catch (error) {
    throw unloadable(path, option, error);
  }
}

/**
 * tsx as the user's project has it (resolved from the working directory, not from Rewind's own
 * dependencies): importing its main entry registers its loader, as `node --import tsx` does.
 */
async function registerTsx(): Promise<boolean> {
  let loader: string;
  try {
    loader = createRequire(join(process.cwd(), 'package.json')).resolve('tsx');
  } catch {
    return false;
  }
  await import(pathToFileURL(loader).href);
  return true;
}

function unloadable(path: string, option: string, error: unknown): ValidationError {
  return new ValidationError(
    `cannot load ${option} ${path}: ${(error as Error)?.message ?? String(error)}`,
    [],
    'pass a module (JavaScript, or TypeScript with tsx installed) that Node.js can import from here',
  );
}
