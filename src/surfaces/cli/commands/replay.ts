import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ValidationError } from '../../../events/errors.js';
import {
  CHANGING_CODE_GUIDE,
  createRuntime,
  exportRun,
  importRun,
  type ReplayReport,
  type RunCheck,
  type RunSelection,
  readExportedRun,
} from '../../../runtime/index.js';
import { openStore } from '../../../store/open.js';
import type { EventStore } from '../../../store/types.js';
import { type GlobalOptions, withStore } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { colour, plural, printJson, safe } from '../output.js';
import { progressBar } from '../progress.js';
import { loadWorkflows } from '../workflows.js';
import { parseCount } from './log.js';

interface ReplayOptions {
  workflows?: string;
  runs: string;
  workflow?: string;
  sample?: number;
}

/** replay (the check before a deploy) and export (one run as a file, for it and for tests). */
export function registerReplayCommands(program: Command): void {
  program
    .command('replay')
    .description('replay stored runs (or exported ones) against your code, running no effect; report every run that would diverge')
    .argument('[files...]', 'runs exported with `rewind export` to check instead of the store')
    .requiredOption('--workflows <module>', 'the code to check: a module exporting the workflow definitions')
    .option('--runs <which>', "'all', 'active' (runs not ended: the ones the new code will drive) or a status", 'all')
    .option('--workflow <name>', 'only runs of this workflow')
    .option('--sample <n>', 'check this many runs picked at random', parseCount)
    .addHelpText(
      'after',
      [
        '',
        'Exit 1 when a run diverges, or a run not ended has no code (its version is not registered): run it in CI before a deploy.',
        'Nothing is written and no step, compensation or append runs; runs are read one at a time.',
        '',
        'Examples:',
        '  rewind replay --workflows ./dist/workflows.js --db postgres://app@db/rewind --runs active',
        '  rewind replay --workflows ./dist/workflows.js --sample 500',
        '  rewind replay --workflows ./src/workflows.ts test/runs/*.json',
      ].join('\n'),
    )
    .action(async (files: string[], opts: ReplayOptions, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions>();
      const workflows = await loadWorkflows(opts.workflows);
      const exported = files.map(readExportedRun);
      const check = {
        runs: opts.runs as RunSelection,
        ...(opts.workflow === undefined ? {} : { workflow: opts.workflow }),
        ...(opts.sample === undefined ? {} : { sample: opts.sample }),
      };
      const bar = progressBar(' {bar} {percentage}% | {value}/{total} runs | {eta_formatted} left', options.json);
      let report: ReplayReport;
      try {
        const replay = (store: EventStore) =>
          createRuntime({ store, workflows }).replayCheck({
            ...check,
            onProgress: ({ done, total }) => {
              if (bar && bar.getTotal() !== total) bar.start(total, done);
              bar?.update(done);
            },
          });
        if (exported.length === 0) report = await withStore(options, replay, 'read');
        else {
          // Exported runs are checked from a store of their own, in memory: the same check as over a database.
          const store = await openStore('memory:');
          try {
            for (const run of exported) await importRun(store, run);
            report = await replay(store);
          } finally {
            await store.close();
          }
        }
      } finally {
        bar?.stop();
      }
      if (options.json) printJson(report);
      else printReport(report, opts.workflows as string);
      process.exitCode = report.ok ? EXIT.ok : EXIT.failed;
    });

  program
    .command('export')
    .description(
      "write one run's events as JSON, for `rewind replay` and for a regression test (`replay(run.json)` in rewind-runtime/testing)",
    )
    .argument('<run>', 'run id')
    .option('--out <file>', 'write here instead of stdout (never overwrites a file)')
    .addHelpText('after', '\nExamples:\n  rewind export order-17 > test/runs/order-17.json\n  rewind export order-17 --out order-17.json')
    .action(async (runId: string, opts: { out?: string }, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions>();
      const run = await withStore(options, (store) => exportRun(store, runId), 'read');
      const text = `${JSON.stringify(run, null, 2)}\n`;
      if (!opts.out) return void process.stdout.write(text);
      try {
        writeFileSync(opts.out, text, { flag: 'wx' });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        throw new ValidationError(`cannot write ${opts.out}: ${code === 'EEXIST' ? 'it exists already' : (code ?? String(error))}`);
      }
      if (!options.json)
        console.error(`${colour.green('✓')} ${plural(run.events.length, 'event')} of ${safe(runId)} written to ${opts.out}`);
    });
}

function printReport(report: ReplayReport, code: string): void {
  for (const run of report.problems) console.log(describeProblem(run));
  if (report.problems.length > 0) console.log('');
  const parts = [`${report.replays} replay`];
  if (report.diverges) parts.push(colour.red(`${report.diverges} diverge`));
  if (report.noCode) parts.push(colour.red(`${report.noCode} without code`));
  const skipped = report.skipped ? colour.dim(` (${plural(report.skipped, 'ended run')} without code skipped)`) : '';
  const mark = report.ok ? colour.green('✓') : colour.red('✗');
  console.log(`${mark} ${plural(report.checked, 'run')} replayed against ${safe(code)}: ${parts.join(', ')}${skipped}`);
  if (report.problems.length < report.diverges + report.noCode) console.log(colour.dim(`(the first ${report.problems.length} are listed)`));
  if (!report.ok) console.log(colour.dim(`what may change under running runs, and how: ${CHANGING_CODE_GUIDE}`));
}

function describeProblem(run: RunCheck): string {
  const head = `${colour.red('✗')} ${colour.bold(safe(run.runId))}  ${safe(run.workflow)}@${safe(run.workflowVersion)}  ${run.status}`;
  if (run.outcome === 'diverges') {
    const { seq, journal, code } = run.divergence;
    return `${head}\n    at call #${seq} the journal holds ${safe(journal)}, the code asks for ${safe(code)}`;
  }
  if (run.outcome === 'no-code') return `${head}\n    no code: ${safe(run.error.message)}`;
  return head;
}
