// The `rewind` command as a user meets it: the compiled CLI (bin/rewind.js, as
// installed), its version, its errors (as text and as JSON), its hints, the
// TypeScript modules it loads, and what it prints about runs and read models.
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, defineWorkflow, openStore, RunEvents } from '../../src/index.js';
import { crashAfter, SimulatedCrash } from '../runtime/helpers.js';
import { tempDir } from '../support/temp.js';
import { refund } from './fixtures/refund-workflow.js';
import { ROOT, runCli } from './run-cli.js';

const rewind = (args: string[], cwd = ROOT) => runCli(args, { cwd });

const dir = tempDir('rewind-cli-usability-');
const db = `sqlite:${join(dir, 'rewind.db')}`;

beforeAll(async () => {
  // Two demo runs, travel-1 and travel-2.
  expect((await rewind(['demo', '--db', db])).code).toBe(0);
  expect((await rewind(['demo', '--db', db])).code).toBe(0);
});

describe('rewind --version', () => {
  it('prints the version of the package', async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    for (const flag of ['--version', '-V']) expect(await rewind([flag])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });
});

describe('rewind demo', () => {
  it('names its runs travel-1, travel-2, … so the ids it suggests are short enough to type', async () => {
    const runs = JSON.parse((await rewind(['runs', '--db', db, '--json'])).stdout) as { runId: string }[];
    expect(runs.map((r) => r.runId).sort()).toEqual(['travel-1', 'travel-2']);
  });
});

describe('errors', () => {
  it('under --json are one JSON object on stderr, with the exit code of the text form', async () => {
    const missing = await rewind(['show', 'no-such-run', '--db', db, '--json']);
    expect(missing).toMatchObject({ code: 3, stdout: '' });
    expect(JSON.parse(missing.stderr)).toEqual({
      error: { code: 'NOT_FOUND', message: 'run "no-such-run" does not exist', hint: 'list the runs with `rewind runs`' },
    });

    const badStatus = await rewind(['runs', '--status', 'bogus', '--db', db, '--json']);
    expect(badStatus.code).toBe(2);
    expect(JSON.parse(badStatus.stderr).error).toMatchObject({ code: 'VALIDATION', message: 'unknown status "bogus"' });

    const unknownCommand = await rewind(['frobnicate', '--json']);
    expect(unknownCommand.code).toBe(2);
    expect(JSON.parse(unknownCommand.stderr).error).toMatchObject({
      code: 'USAGE',
      message: expect.stringContaining("unknown command 'frobnicate'"),
    });

    const missingOption = await rewind(['rollback', 'travel-1', '--to', 'planned', '--db', db, '--json']);
    expect(missingOption.code).toBe(2);
    expect(JSON.parse(missingOption.stderr).error).toMatchObject({
      code: 'USAGE',
      message: "required option '--reason <text>' not specified",
    });
  });

  it('as text, put the hint on a line of its own, in the words of the CLI', async () => {
    const missing = await rewind(['state', 'nope', '--at', '1', '--db', db]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toBe(
      'error no run with id "nope"\n  list the runs with `rewind runs`; a run id has no "run-" prefix (its stream has)\n',
    );
    const stream = await rewind(['show', 'run-travel-1', '--db', db]);
    expect(stream.code).toBe(3);
    expect(stream.stderr).toContain('a run id has no "run-" prefix (its stream has): try `rewind show travel-1`');
  });

  it("give the library's errors hints in the CLI's words: commands and flags, not API calls or request bodies", async () => {
    const hintOf = async (args: string[]) => {
      const out = await rewind([...args, '--db', db]);
      return [out.code, out.stderr.split('\n')[1]?.trim()];
    };
    // A checkpoint the run does not have: to roll back to, or to look at.
    expect(await hintOf(['rollback', 'travel-1', '--to', 'nowhere', '--reason', 'x'])).toEqual([
      3,
      'known checkpoints: planned@2 (or --to start)',
    ]);
    expect(await hintOf(['state', 'travel-1', '--at', 'nowhere'])).toEqual([3, 'its checkpoints: planned']);
    // A compensation to retry on a run that has none blocked.
    expect(await hintOf(['retry', 'travel-1'])).toEqual([
      1,
      'only a run that needs attention has a blocked compensation: `rewind runs --status needs_attention` lists them',
    ]);
    // What the library would refuse with its own option names is refused as a usage error, naming the flag.
    const blank = await rewind(['rollback', 'travel-1', '--to', 'planned', '--reason', ' ', '--db', db]);
    expect([blank.code, blank.stderr.split('\n')[0]]).toEqual([
      2,
      "error: option '--reason <text>' argument ' ' is invalid. give some text: it is recorded in the log",
    ]);
    const then = await rewind(['rollback', 'travel-1', '--to', 'planned', '--reason', 'x', '--then', 'later', '--db', db]);
    expect([then.code, then.stderr.split('\n')[0]]).toEqual([
      2,
      "error: option '--then <what>' argument 'later' is invalid. Allowed choices are stop, retry, fail.",
    ]);
  });

  it('escape control characters from ids and the log instead of sending them to the terminal', async () => {
    const hostile = 'x\u001b]0;owned\u0007\u001b[2J';
    const shown = await rewind(['show', hostile, '--db', db]);
    expect(shown.code).toBe(3);
    expect(shown.stderr).toContain('run "x\\u001b]0;owned\\u0007\\u001b[2J" does not exist');
    expect(shown.stderr).not.toContain('\u001b');

    // A rollback reason is free text recorded in the log, shown again by `show`.
    const reason = 'card\u001b[31m declined\u202e';
    const rolled = await rewind(['rollback', 'travel-2', '--to', 'planned', '--reason', reason, '--db', db]);
    expect(rolled.code, rolled.stderr).toBe(0);
    const timeline = (await rewind(['show', 'travel-2', '--db', db])).stdout;
    expect(timeline).toContain('card\\u001b[31m declined\\u202e');
    expect(timeline.includes('\u001b') || timeline.includes('\u202e')).toBe(false);
  });
});

describe('rewind events and verify on a stream that does not exist', () => {
  it('answer not found (exit 3), pointing at the "run-" prefix when a run id was given', async () => {
    for (const command of ['events', 'verify']) {
      const asRunId = await rewind([command, 'travel-1', '--db', db]);
      expect(asRunId.code, command).toBe(3);
      expect(asRunId.stderr, command).toBe(
        'error stream "travel-1" does not exist\n  a run\'s stream is "run-<id>": try `rewind events run-travel-1` (or `rewind show travel-1`)\n',
      );
    }
    const unknown = await rewind(['events', 'nothing-here', '--db', db]);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain('list streams with `rewind streams`');
    expect((await rewind(['events', 'run-travel-1', '--limit', '1', '--db', db])).stdout).toContain('run-travel-1@1');
  });
});

describe('rewind runs on a file that does not exist', () => {
  it('says so (exit 5) and creates nothing: a typo in --db is not an empty log', async () => {
    const missing = join(dir, 'typo.db');
    const out = await rewind(['runs', '--db', missing]);
    expect(out.code).toBe(5);
    expect(out.stderr).toBe(
      `error ${missing} does not exist\n  name the file your runs were written to (--db or REWIND_DB); \`rewind demo\` writes one\n`,
    );
    expect(existsSync(missing)).toBe(false);
  });
});

describe('rewind runs', () => {
  it('counts the steps a run has done, and names the step it stopped in; it claims no total it cannot know', async () => {
    // Given a run of a five-step workflow whose process died in its third step...
    const file = join(dir, 'crashed.db');
    const store = await openStore(`sqlite:${file}`);
    const fiveSteps = defineWorkflow({
      name: 'five-steps',
      initialState: null,
      apply: (s: null) => s,
      run: async (ctx) => {
        for (let i = 1; i <= 5; i++) await ctx.step(`step-${i}`, () => i);
      },
    });
    const dies = crashAfter(store, (e) => e.type === RunEvents.StepStarted && (e.data as { name: string }).name === 'step-3');
    await expect(createRuntime({ store: dies }).start(fiveSteps, null, { runId: 'crashed' })).rejects.toBeInstanceOf(SimulatedCrash);
    await store.close();
    // ...when the runs are listed, then its row says 2 steps done, in step-3 (not "2/3", which read as 2 of 3 steps).
    const listed = await rewind(['runs', '--db', file]);
    expect(listed.code, listed.stderr).toBe(0);
    const [header, , row] = listed.stdout.split('\n');
    expect(header?.split(/ {2,}/)).toEqual([
      'run',
      'workflow',
      'status',
      'steps done',
      'rollbacks',
      'now / last error',
      'started',
      'updated',
    ]);
    expect(row?.split(/ {2,}/).slice(0, 6)).toEqual(['crashed', 'five-steps@1', 'running', '2', '0', 'step-3']);
  });
});

describe('rewind rollback', () => {
  it('prints the compensations it ran, newest step first', async () => {
    const rolled = await rewind(['rollback', 'travel-1', '--to', 'planned', '--reason', 'try again', '--db', db]);
    expect(rolled.code, rolled.stderr).toBe(0);
    expect(rolled.stdout).toBe(
      [
        'travel-1 is now rolled_back',
        'compensations, newest step first:',
        '  ⟲ book-hotel: compensated',
        '  ⟲ charge-card: compensated',
        '  ⟲ book-flight: compensated',
        '',
      ].join('\n'),
    );
  });
});

describe('--workflows with a TypeScript module', () => {
  it('loads it with the tsx of the project it is run from', async () => {
    const file = join(dir, 'ts.db');
    const store = await openStore(`sqlite:${file}`);
    await createRuntime({ store, workflows: [refund] }).start(refund, null, { runId: 'order-1' });
    await store.close();
    const rolled = await rewind([
      'rollback',
      'order-1',
      '--to',
      'ready',
      '--reason',
      'refund',
      '--workflows',
      'test/cli/fixtures/refund-workflow.ts',
      '--db',
      `sqlite:${file}`,
      '--json',
    ]);
    expect(rolled.code, rolled.stderr).toBe(0);
    expect(JSON.parse(rolled.stdout)).toMatchObject({
      status: 'rolled_back',
      compensations: [
        { step: 'charge', outcome: 'compensated' },
        { step: 'reserve', outcome: 'compensated' },
      ],
    });
  });

  it('refuses a run whose workflow the module does not hold as bad arguments (exit 2)', async () => {
    const file = join(dir, 'other.db');
    const store = await openStore(`sqlite:${file}`);
    await createRuntime({ store, workflows: [refund] }).start(refund, null, { runId: 'order-2' });
    await store.close();
    const args = ['--to', 'ready', '--reason', 'refund', '--workflows', 'test/cli/fixtures/approval-workflow.ts', '--db', `sqlite:${file}`];
    const refused = await rewind(['rollback', 'order-2', ...args]);
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toContain('no workflow named "cli-refund" is registered');
  });

  it('says how when the project has no tsx', async () => {
    const elsewhere = tempDir('rewind-no-tsx-');
    copyFileSync(join(ROOT, 'test/cli/fixtures/refund-workflow.ts'), join(elsewhere, 'workflows.ts'));
    const refused = await rewind(['resume', 'order-1', '--workflows', 'workflows.ts', '--db', db], elsewhere);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(
      [
        'error --workflows workflows.ts is TypeScript, which this Node.js does not load by itself',
        '  install tsx in your project (npm install --save-dev tsx) and Rewind loads it with tsx, or pass the compiled JavaScript module',
        '',
      ].join('\n'),
    );
  });
});

describe('rewind projections', () => {
  it('status says which read models are behind and how to catch them up; catch-up does it', async () => {
    const file = `sqlite:${join(dir, 'projections.db')}`;
    expect((await rewind(['demo', '--db', file])).code).toBe(0);
    const before = await rewind(['projections', 'status', '--db', file]);
    expect(before.code).toBe(0);
    expect(before.stdout).toContain(
      'runs, tool-steps, checkpoints, rollbacks are behind the log: `rewind projections catch-up` applies the rest once; `rewind worker` keeps the built-in ones live',
    );
    const caughtUp = await rewind(['projections', 'catch-up', '--db', file, '--json']);
    expect(caughtUp.code, caughtUp.stderr).toBe(0);
    expect((JSON.parse(caughtUp.stdout) as { name: string; lagEvents: number }[]).map((s) => [s.name, s.lagEvents])).toEqual([
      ['runs', 0],
      ['tool-steps', 0],
      ['checkpoints', 0],
      ['rollbacks', 0],
    ]);
    const after = await rewind(['projections', 'status', '--db', file]);
    expect(after.stdout).not.toContain('behind the log');
  });
});
