import { runBench } from '../src/bench/run.js';

/**
 * `npm run bench [-- --scale N] [-- --only sqlite,postgres] [-- --json]`: the
 * same runner as `rewind bench` (src/bench/run.ts), with the sections of a
 * source checkout added: they need its devDependencies (LangGraph's own
 * savers) or its test fixtures (the worker processes).
 */
const args = process.argv.slice(2);
const value = (flag: string) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);
await runBench({
  scale: Number(value('--scale') ?? 1) || 1,
  only: value('--only')?.split(',').filter(Boolean),
  json: args.includes('--json'),
  sections: {
    projections: async (s, url) => (await import('./projections.js')).benchProjections(s, url),
    langgraph: async (s, url) => {
      process.env.DATABASE_URL ??= await url();
      await (await import('./langgraph.js')).benchLangGraph(s);
    },
    workers: async (s, url) => (await import('./workers.js')).benchWorkers(await url(), s),
    dbos: async (s, url) => (await import('./dbos.js')).benchDbos(await url(), s),
  },
});
