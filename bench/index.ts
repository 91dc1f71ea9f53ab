import { runBench } from '../src/bench/run.js';

/**
 * `npm run bench [-- --scale N] [-- --only sqlite,postgres] [-- --json]`: the
 * same runner as `rewind bench` (src/bench/run.ts).
 */
const args = process.argv.slice(2);
const value = (flag: string) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);
await runBench({
  scale: Number(value('--scale') ?? 1) || 1,
  only: value('--only')?.split(',').filter(Boolean),
  json: args.includes('--json'),
});
