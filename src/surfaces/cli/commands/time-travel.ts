import type { Command } from 'commander';
import { ValidationError } from '../../../events/errors.js';
import type { At } from '../../../runtime/index.js';
import type { GlobalOptions } from '../context.js';
import { colour, plural, printJson, safe } from '../output.js';
import { paintStatus, type WorkflowOption, withRuntime } from './runs.js';

/** `--at 17` is a version, `--at 2026-11-23T10:00:00Z` a time, anything else a checkpoint label. */
export function parseAt(text: string): At {
  if (/^\d+$/.test(text)) return { version: Number(text) };
  if (/^\d{4}-\d{2}-\d{2}T/.test(text)) {
    if (Number.isNaN(Date.parse(text)))
      throw new ValidationError(`"${text}" looks like a time but is not one`, [], 'write it as 2026-11-23T10:00:00Z');
    return { time: text };
  }
  if (text.trim() === '') throw new ValidationError('--at needs a version, a time or a checkpoint label');
  return { label: text };
}

const workflowsOption = ['--workflows <module>', 'module exporting the workflow definitions (default: the bundled examples)'] as const;

/** Time travel from the terminal: state at a point, diff of two runs, fork. */
export function registerTimeTravelCommands(program: Command): void {
  program
    .command('state')
    .description("a run's state at a version, a time or a checkpoint label, as the log stood then")
    .argument('<run>', 'run id')
    .requiredOption('--at <version|time|label>', 'a stream version, an ISO time, or a checkpoint label')
    .option(...workflowsOption)
    .addHelpText(
      'after',
      '\nExamples:\n  rewind state my-run --at 17\n  rewind state my-run --at planned --json\n  rewind state my-run --at 2026-11-23T10:00:00Z',
    )
    .action(async (runId: string, opts: { at: string }, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions & WorkflowOption>();
      const at = parseAt(opts.at);
      const result = await withRuntime(options, (runtime) => runtime.stateAt(runId, at), 'read');
      if (options.json) return printJson(result);
      const from = result.fromCheckpoint
        ? colour.dim(` (from checkpoint "${safe(result.fromCheckpoint.label)}" at v${result.fromCheckpoint.version})`)
        : '';
      console.log(
        `${colour.bold(safe(runId))} at v${result.version} ${colour.cyan(safe(result.type))} ${colour.dim(result.recordedAt)}${from}\n`,
      );
      console.log(JSON.stringify(result.state, null, 2));
    });

  program
    .command('diff')
    .description('compare two runs: the first divergent event and a structural diff of their state')
    .argument('<runA>', 'run id')
    .argument('<runB>', 'run id')
    .option('--at <version|time|label>', 'compare the states at this point of both runs (default: their ends)')
    .option(...workflowsOption)
    .addHelpText('after', '\nExamples:\n  rewind diff my-run my-run-fork\n  rewind diff run-a run-b --at planned --json')
    .action(async (a: string, b: string, opts: { at?: string }, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions & WorkflowOption>();
      const at = opts.at === undefined ? undefined : parseAt(opts.at);
      const diff = await withRuntime(options, (runtime) => runtime.diff(a, b, at === undefined ? {} : { at }), 'read');
      if (options.json) return printJson(diff);
      console.log(`${colour.bold(safe(a))} vs ${colour.bold(safe(b))}: ${safe(diff.summary)}`);
      if (diff.firstDivergence) {
        const { a: ea, b: eb } = diff.firstDivergence;
        console.log(`\nfirst divergence after ${plural(diff.sharedEvents, 'shared event')}:`);
        console.log(`  ${safe(a)}: ${ea ? `v${ea.version} ${safe(ea.type)} ${JSON.stringify(ea.data)}` : colour.dim('(ended)')}`);
        console.log(`  ${safe(b)}: ${eb ? `v${eb.version} ${safe(eb.type)} ${JSON.stringify(eb.data)}` : colour.dim('(ended)')}`);
      }
      if (diff.state && !diff.state.diff.equal) {
        console.log('\nstate:');
        for (const x of diff.state.diff.added) console.log(colour.green(`  + ${safe(x.at)} = ${JSON.stringify(x.value)}`));
        for (const x of diff.state.diff.removed) console.log(colour.red(`  - ${safe(x.at)} = ${JSON.stringify(x.value)}`));
        for (const x of diff.state.diff.changed)
          console.log(colour.yellow(`  ~ ${safe(x.at)}: ${JSON.stringify(x.from)} → ${JSON.stringify(x.to)}`));
      }
    });

  program
    .command('fork')
    .description("a new run whose history is this run's up to a point; it then continues (steps before the point are not run again)")
    .argument('<run>', 'run id')
    .option('--at <version|time|label>', 'where the fork branches off (default: the last event)')
    .option('--id <runId>', "the fork's run id (default: generated)")
    .option('--input <json>', 'other input for the fork, as JSON')
    .option(...workflowsOption)
    .addHelpText(
      'after',
      '\nExamples:\n  rewind fork my-run --at 7\n  rewind fork my-run --at planned --input \'{"hotels":["Harbour Inn"]}\' --id what-if',
    )
    .action(async (runId: string, opts: { at?: string; id?: string; input?: string }, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions & WorkflowOption>();
      let input: unknown;
      if (opts.input !== undefined) {
        try {
          input = JSON.parse(opts.input);
        } catch (error) {
          throw new ValidationError(`--input is not JSON: ${(error as Error).message}`);
        }
      }
      const info = await withRuntime(options, (runtime) =>
        runtime.fork(runId, { at: opts.at === undefined ? undefined : parseAt(opts.at), runId: opts.id, input }),
      );
      if (options.json) return printJson(info);
      console.log(`forked ${colour.bold(safe(runId))} into ${colour.bold(safe(info.runId))}: ${paintStatus(info.status)}`);
      console.log(colour.dim(`  rewind show ${safe(info.runId)} · rewind diff ${safe(runId)} ${safe(info.runId)}`));
    });
}
