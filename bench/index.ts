import { startEmbeddedPostgres } from '../test/support/embedded-postgres.js';
import { benchLangGraph } from './langgraph.js';
import { printTable } from './lib.js';
import { benchPostgresStore } from './store-postgres.js';
import { benchSqliteStore } from './store-sqlite.js';

/**
 * `npm run bench [-- --scale N] [-- --only name]`: every figure is measured
 * side by side in this one run, each next to the baseline it is compared with.
 * PostgreSQL figures use DATABASE_URL, or a throwaway embedded server that
 * syncs to disk like a production one.
 */
const args = process.argv.slice(2);
const scale = Number(args[args.indexOf('--scale') + 1] ?? 1) || 1;
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;

const sections: Record<string, (scale: number, databaseUrl: () => Promise<string>) => Promise<void>> = {
  sqlite: (s) => benchSqliteStore(s),
  postgres: async (s, url) => benchPostgresStore(await url(), s),
  langgraph: async (s, url) => {
    process.env.DATABASE_URL ??= await url();
    await benchLangGraph(s);
  },
};

let server: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined;
const databaseUrl = async () => {
  if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
  server ??= await startEmbeddedPostgres({ disposable: false });
  return server.url;
};

try {
  for (const [name, run] of Object.entries(sections)) {
    if (only && only !== name) continue;
    process.stderr.write(`${name}…\n`);
    await run(scale, databaseUrl);
  }
} finally {
  await server?.stop();
}
console.log(`\nRewind benchmark · node ${process.version} · ${new Date().toISOString()}\n`);
printTable();
