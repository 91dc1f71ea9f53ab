import { type Command, InvalidArgumentError } from 'commander';
import { runBench, SECTIONS } from '../../../bench/run.js';
import type { GlobalOptions } from '../context.js';

interface BenchCommandOptions {
  only?: string;
  scale: number;
}

/** `rewind bench`: the benchmark of `npm run bench` (src/bench), figures next to their baselines, or JSON with --json. */
export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description('measure appends, reads, folds, steps, rollback and resume against the raw drivers and peers')
    .option('--only <sections>', `comma-separated sections: ${Object.keys(SECTIONS).join(', ')}`)
    .option('--scale <n>', 'multiply the workload sizes (1 runs in a few minutes)', parseScale, 1)
    .option('--json', 'print the figures as JSON')
    .addHelpText(
      'after',
      [
        '',
        'PostgreSQL sections use DATABASE_URL; in a source checkout a throwaway embedded server is started otherwise.',
        'The comparisons with Emmett need the devDependencies of a source checkout; without them those figures are skipped.',
        'npm run bench in a source checkout also runs the projections, langgraph and workers sections.',
        '',
        'Examples:',
        '  rewind bench --only sqlite',
        '  rewind bench --scale 10 --json > bench.json',
      ].join('\n'),
    )
    .action(async (opts: BenchCommandOptions, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions & BenchCommandOptions>();
      await runBench({
        scale: opts.scale,
        only: opts.only
          ?.split(',')
          .map((s) => s.trim())
          .filter(Boolean),
        json: Boolean(options.json),
      });
    });
}

function parseScale(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('a positive number');
  return n;
}
