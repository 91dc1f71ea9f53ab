// rewind-runtime/testing is for any test runner: loading it must not load vitest (the conformance suite, which
// needs it, is rewind-runtime/testing/conformance). Checked in a child process whose module hooks refuse vitest.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Module hooks that fail any resolution of vitest (or @vitest/…), naming the module that asked for it. */
const REFUSE_VITEST = `
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  if (/^@?vitest(\\/|$)/.test(specifier) || /\\/node_modules\\/@?vitest\\//.test(resolved.url)) {
    throw new Error('vitest loaded by ' + context.parentURL);
  }
  return resolved;
}`;
const REGISTER = `import { register } from 'node:module'; register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(REFUSE_VITEST)}));`;

/** Imports `module` (a path under the repository) with tsx, vitest refused; resolves with its export names. */
async function importWithoutVitest(module: string): Promise<string[]> {
  const script = `const m = await import(${JSON.stringify(new URL(module, `file://${ROOT}`).href)}); console.log(JSON.stringify(Object.keys(m).sort()));`;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', '--import', `data:text/javascript,${encodeURIComponent(REGISTER)}`, '--input-type=module', '-e', script],
    { cwd: ROOT },
  );
  return JSON.parse(stdout) as string[];
}

describe('rewind-runtime/testing loads no test runner', () => {
  it('given vitest refused, when src/testing/index.ts is imported, then it loads and exports the kit', async () => {
    expect(await importWithoutVitest('src/testing/index.ts')).toEqual([
      'FakeClock',
      'SimulatedCrash',
      'Stub',
      'WorkflowTest',
      'assertReplays',
      'fails',
      'hangs',
      'nextActionOf',
      'replay',
      'sequence',
      'stepCompleted',
      'stepStarted',
      'testWorkflow',
    ]);
  });

  it('given vitest refused, when the conformance suite is imported, then it fails on vitest (so the check above can fail)', async () => {
    await expect(importWithoutVitest('src/testing/conformance.ts')).rejects.toThrow(
      /vitest loaded by file:.*\/src\/testing\/conformance\.ts/,
    );
  });
});
