// The package as a user gets it: `npm pack`, installed into an empty project
// with production dependencies only, type-checked by a strict consumer with
// skipLibCheck off, and run: the CLI through npx, an example from the package.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/temp.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const exec = promisify(execFile);
/** npm quietly, from the cache where it can, and never fetching a package called `rewind` for npx. */
const NPM_ENV = { ...process.env, NO_COLOR: '1', npm_config_yes: 'false', npm_config_update_notifier: 'false', npm_config_fund: 'false' };

async function run(command: string, args: string[], cwd: string): Promise<string> {
  try {
    return (await exec(command, args, { cwd, env: NPM_ENV, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 })).stdout;
  } catch (error) {
    const e = error as { message: string; stdout?: string; stderr?: string };
    throw new Error(`${e.message}\n--- stdout\n${e.stdout ?? ''}\n--- stderr\n${e.stderr ?? ''}`);
  }
}

/** What a user writes, compiled under the strictest settings a project is likely to use. */
const CONSUMER = `
import { createRuntime, defineProjection, defineWorkflow, openProjections, openStore, type RunInfo } from 'rewind-runtime';
import { startServer } from 'rewind-runtime/http';
import { instrument } from 'rewind-runtime/otel';
import type { ConformanceOptions } from 'rewind-runtime/testing/conformance';

const store = await openStore('sqlite:./consumer.db');
const order = defineWorkflow({
  name: 'order',
  initialState: { charged: 0 },
  apply: (state) => state,
  run: async (ctx, input: { amount: number }) => ({ charged: await ctx.step('charge', () => input.amount) }),
});
const runtime = createRuntime({ store, workflows: [order] });
const run: RunInfo<{ charged: number }, { charged: number }> = await runtime.start(order, { amount: 5 });
// The output keeps the workflow's type.
const charged: number | undefined = run.output?.charged;
// @ts-expect-error: not a string
const wrong: string | undefined = run.output?.charged;

const orders = defineProjection({
  name: 'orders',
  version: 1,
  key: (e) => e.streamId,
  evolve: (doc: { events: number } | undefined) => ({ events: (doc?.events ?? 0) + 1 }),
});
const projections = await openProjections(store, [orders]);
await projections.catchUp();
const found = await projections.find('orders');
const events: number | undefined = found[0]?.doc.events;
// @ts-expect-error: no projection has this name (and at run time, a NotFoundError)
const unknown = await projections.find('order').catch((error: Error) => error.name);

const server = await startServer({ store, runtime, workflows: [order], port: 0 });
const telemetry = instrument(store);
await telemetry.stop();
await server.close();
await projections.close();
await runtime.close();
await store.close();
console.log(JSON.stringify({ status: run.status, charged, events, wrong, unknown }));
`;

/** A workflow test as a team on node:test writes it: the kit and the runtime, no other test runner. */
const NODE_TEST_SPEC = `
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defineWorkflow } from 'rewind-runtime';
import { fails, hangs, stepCompleted, testWorkflow } from 'rewind-runtime/testing';

const order = defineWorkflow({
  name: 'order',
  initialState: { paid: 0 },
  apply: (state, event) => (event.type === 'Paid' ? { paid: state.paid + 1 } : state),
  onFailure: { rollbackTo: 'latest', after: 'fail' },
  run: async (ctx, amount) => {
    await ctx.checkpoint('ready');
    await ctx.step('charge', () => ({ id: 'ch_live' }), { compensate: () => {} });
    await ctx.emit({ type: 'Paid', data: { amount } });
    return ctx.step('ship', () => 'shipped', { timeoutMs: 3_600_000 });
  },
});

test('given shipping fails, when an order runs, then the charge is compensated and the run fails', async () => {
  const run = await testWorkflow(order, { steps: { ship: fails('out of stock') } }).start(90);
  assert.equal(run.status, 'failed');
  assert.deepEqual(run.compensated, ['charge']);
  assert.deepEqual(run.state, { paid: 0 });
});

test('given shipping never answers, then it times out after its hour of fake time', async () => {
  const run = await testWorkflow(order, { steps: { ship: hangs() } }).start(90);
  assert.equal(run.error?.code, 'STEP_TIMEOUT');
  assert.equal(run.elapsedMs, 3_600_000);
});

test('given a crash after the charge, when the run resumes, then the charge does not run again', async () => {
  const t = testWorkflow(order, { steps: { charge: { id: 'ch_1' } } });
  await t.start(90, { runId: 'o-1', crashAfter: stepCompleted('charge') });
  const resumed = await t.resume('o-1');
  assert.equal(resumed.status, 'completed');
  assert.deepEqual(t.calls.map((c) => c.step), ['charge', 'ship']);
});
`;

const dir = tempDir('rewind-package-');
let files: string[];

beforeAll(async () => {
  const [packed] = JSON.parse(await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], ROOT)) as {
    filename: string;
    files: { path: string }[];
  }[];
  files = (packed?.files ?? []).map((f) => f.path);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  const typesNode = JSON.parse(readFileSync(join(ROOT, 'node_modules/@types/node/package.json'), 'utf8')).version;
  // better-sqlite3 compiles SQLite when it installs, and fetching its prebuilt binary needs a host other than the
  // registry: the project gets the repository's copy (the same version, already built) instead of building its own.
  await run(
    'npm',
    [
      'install',
      '--omit=dev',
      '--ignore-scripts',
      '--prefer-offline',
      '--no-audit',
      join(dir, packed?.filename as string),
      join(ROOT, 'node_modules/better-sqlite3'),
      `@types/node@${typesNode}`,
    ],
    dir,
  );
}, 180_000);

describe('the packed package', { timeout: 120_000 }, () => {
  it('holds the compiled code, the CLI, the debugger, the examples and the guides; no sources, maps or tests', () => {
    for (const file of [
      'package.json',
      'README.md',
      'LICENSE',
      'bin/rewind.js',
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/surfaces/http/index.d.ts',
      'dist/src/testing/index.js',
      'dist/src/testing/conformance.js',
      'dist/web/index.html',
      'dist/examples/travel.js',
      'examples/travel.ts',
      'docs/benchmarks.md',
      'docs/langgraph.md',
    ]) {
      expect(files, file).toContain(file);
    }
    expect(files.filter((f) => f.endsWith('.map') || /^(src|test|bench)\//.test(f) || f.startsWith('docs/screenshots'))).toEqual([]);
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(manifest).toMatchObject({ name: 'rewind-runtime', license: 'MIT', bin: { rewind: './bin/rewind.js' } });
    // No made-up addresses: the project has no public repository to name.
    expect([manifest.repository, manifest.homepage, manifest.bugs]).toEqual([undefined, undefined, undefined]);
  });

  it('runs no script of ours when installed: dist/ comes built, so the manifest has no install-time script', () => {
    const installed = JSON.parse(readFileSync(join(dir, 'node_modules/rewind-runtime/package.json'), 'utf8'));
    const scripts = Object.keys(installed.scripts ?? {});
    expect(scripts.filter((s) => ['preinstall', 'install', 'postinstall', 'prepare'].includes(s))).toEqual([]);
    expect(installed.scripts.prepack).toBe('npm run build');
  });

  it('type-checks a strict consumer with skipLibCheck off, and runs it', async () => {
    writeFileSync(join(dir, 'consumer.ts'), CONSUMER);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          noUncheckedIndexedAccess: true,
          exactOptionalPropertyTypes: true,
          skipLibCheck: false,
          types: ['node'],
          outDir: 'out',
        },
        files: ['consumer.ts'],
      }),
    );
    await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], dir);
    expect(JSON.parse(await run(process.execPath, ['out/consumer.js'], dir))).toEqual({
      status: 'completed',
      charged: 5,
      events: 4, // RunStarted, StepStarted, StepCompleted, RunCompleted
      wrong: 5,
      unknown: 'NotFoundError',
    });
  });

  it('runs npx rewind demo from the installed package', async () => {
    const demo = JSON.parse(await run('npx', ['rewind', 'demo', '--db', 'sqlite:./demo.db', '--json'], dir));
    expect(demo).toMatchObject({ runId: 'travel-1', status: 'completed', state: { hotel: 'HT-HarbourInn' } });
    expect(JSON.parse(await run('npx', ['rewind', 'verify', '--db', 'sqlite:./demo.db', '--json'], dir))).toMatchObject({
      ok: true,
      events: 31,
      streams: 1,
    });
  });

  it('runs a testWorkflow spec under node --test, with no vitest installed', async () => {
    expect(existsSync(join(dir, 'node_modules/vitest'))).toBe(false);
    writeFileSync(join(dir, 'order.test.js'), NODE_TEST_SPEC);
    const out = await run(process.execPath, ['--test', '--test-reporter=tap', 'order.test.js'], dir);
    expect(out).toContain('# tests 3\n# suites 0\n# pass 3\n# fail 0\n');
  });

  it('runs an example from the installed package', async () => {
    const out = await run(process.execPath, ['node_modules/rewind-runtime/dist/examples/agents.js'], dir);
    expect(out).toMatch(/^group trip-\w+: rolled_back to "planned"/);
    expect(out).toContain('  payer: void authorization');
  });
});
