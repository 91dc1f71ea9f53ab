// Every fenced code block of the README and the other guides, run as a reader
// would run it: the TypeScript type-checked strictly, compiled and executed against the
// built package imported by its name (`rewind-runtime`), the shell commands
// executed (`npx rewind …` finds the package's own bin), and printed output
// compared with what the guide says it prints. See blocks.ts for the rules.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blocksOf, type Plan, planOf } from './blocks.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

/** The guides: the README, docs/, and the READMEs beside the code. */
function guides(): string[] {
  const inSrc = (dir: string): string[] =>
    readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((d) =>
      d.isDirectory() ? inSrc(join(dir, d.name)) : d.name === 'README.md' ? [join(dir, d.name)] : [],
    );
  const docs = readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md'));
  return ['README.md', ...docs.map((name) => join('docs', name)), ...inSrc('src')];
}

interface Step {
  name: string;
  plan: Plan;
  file?: string;
}

/**
 * A user's project inside the repository's .tmp/ (so the guides' other imports, zod or ai,
 * resolve from the repository's node_modules), with the built package installed as a link.
 */
const work = (() => {
  mkdirSync(join(ROOT, '.tmp'), { recursive: true });
  return mkdtempSync(join(ROOT, '.tmp', 'doc-tests-'));
})();

const documents = guides().flatMap((doc) => {
  const dir = join(work, doc.replace(/[/.]/g, '_'));
  const steps: Step[] = [];
  const blocks = blocksOf(readFileSync(join(ROOT, doc), 'utf8'));
  planOf(blocks).forEach((plan, i) => {
    const block = blocks[i] as (typeof blocks)[number];
    const name = `${doc}:${block.line} ${[block.lang, ...block.flags].join(' ')}`;
    steps.push({ name, plan, ...(plan.kind === 'ts' ? { file: join(dir, `line-${block.line}.ts`) } : {}) });
  });
  return steps.length > 0 ? [{ doc, dir, steps }] : [];
});

/** tsc's complaints, by file. */
const typeErrors = new Map<string, string[]>();

beforeAll(async () => {
  writeFileSync(join(work, 'package.json'), JSON.stringify({ name: 'doc-tests', private: true, type: 'module' }));
  writeFileSync(
    join(work, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'nodenext',
        moduleResolution: 'nodenext',
        strict: true,
        skipLibCheck: true,
        types: ['node'],
        // One compiler pass checks every block and writes the JavaScript that is run.
        rootDir: '.',
        outDir: 'out',
      },
      include: ['**/*.ts'],
      exclude: ['out', 'node_modules'],
    }),
  );
  mkdirSync(join(work, 'node_modules/.bin'), { recursive: true });
  symlinkSync(ROOT, join(work, 'node_modules/rewind-runtime'), 'dir');
  symlinkSync(join(ROOT, 'bin/rewind.js'), join(work, 'node_modules/.bin/rewind'));
  for (const { dir, steps } of documents) {
    mkdirSync(dir, { recursive: true });
    // `export {}`: each block a module of its own, whatever it imports.
    for (const step of steps) if (step.plan.kind === 'ts' && step.file) writeFileSync(step.file, `${step.plan.source}\nexport {};\n`);
  }
  try {
    await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(work, 'tsconfig.json')], { cwd: work });
  } catch (error) {
    for (const line of String((error as { stdout?: string }).stdout ?? error).split('\n')) {
      const file = /^(.+?\.ts)\(\d+,\d+\)/.exec(line)?.[1];
      if (file) typeErrors.set(join(work, file), [...(typeErrors.get(join(work, file)) ?? []), line]);
      else if (line.trim() && typeErrors.size === 0) typeErrors.set('(tsc)', [line]);
    }
  }
}, 120_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

async function execute(command: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await run(command, args, {
      cwd,
      timeout: 60_000,
      // npx must find the package's own bin, never fetch a package called `rewind` from the registry.
      env: { ...process.env, NO_COLOR: '1', npm_config_yes: 'false', npm_config_update_notifier: 'false' },
    });
    return stdout;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${e.message}\n--- stdout\n${e.stdout ?? ''}\n--- stderr\n${e.stderr ?? ''}`);
  }
}

describe.each(documents)('$doc', ({ dir, steps }) => {
  let printed: string | undefined;
  it.each(steps)('$name', { timeout: 90_000 }, async ({ plan, file }) => {
    // An output block is checked against the block right before it, and only when that block ran.
    const before = printed;
    printed = undefined;
    switch (plan.kind) {
      case 'unrunnable':
        throw new Error(plan.why);
      case 'skip':
        return;
      case 'ts': {
        const errors = [...(typeErrors.get('(tsc)') ?? []), ...(typeErrors.get(file as string) ?? [])];
        expect(errors.map((e) => e.replace(`${relative(work, dir)}/`, '')).join('\n')).toBe('');
        if (!plan.run) return;
        printed = await execute(process.execPath, [join(work, 'out', relative(work, file as string).replace(/\.ts$/, '.js'))], dir);
        return;
      }
      case 'sh':
        printed = '';
        for (const command of plan.commands) printed += await execute('bash', ['-c', command], dir);
        return;
      case 'output':
        expect(before, 'an output block follows a block that ran').toBeDefined();
        expect((before as string).trimEnd()).toBe(plan.expected.trimEnd());
        return;
    }
  });
});
