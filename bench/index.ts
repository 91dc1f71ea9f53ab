import { printTable } from './lib.js';
import { benchSqliteStore } from './store-sqlite.js';

/**
 * `npm run bench [-- --scale N] [-- --only name]`: every figure is measured
 * side by side in this one run, each with the baseline it is compared to.
 */
const args = process.argv.slice(2);
const scale = Number(args[args.indexOf('--scale') + 1] ?? 1) || 1;
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;

const sections: Record<string, (scale: number) => Promise<void>> = {
  sqlite: benchSqliteStore,
};

for (const [name, run] of Object.entries(sections)) {
  if (only && only !== name) continue;
  process.stderr.write(`${name}…\n`);
  await run(scale);
}
console.log(`\nRewind benchmark · node ${process.version} · ${new Date().toISOString()}\n`);
printTable();
