import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { versionOf } from '../src/bench/versions.js';
import { optional } from '../src/bench/workload.js';
import { createRuntime, defineWorkflow } from '../src/runtime/index.js';
import { openStore } from '../src/store/open.js';
import { type Contestant, find, fmt, measureInTurns, note, ratio, target } from './lib.js';

const SECTION = 'workflow vs DBOS';
const STEPS = 10;
const IN_FLIGHT = 16;
type Dbos = typeof import('@dbos-inc/dbos-sdk');

/** The workflow both engines run: ten durable steps, each a trivial function returning a small value. */
const tenSteps = defineWorkflow<{ n: number }, null, { type: 'None'; data: null }, number>({
  name: 'bench-ten-steps',
  initialState: null,
  apply: (s) => s,
  run: async (ctx) => {
    let sum = 0;
    for (let i = 0; i < STEPS; i++) sum += await ctx.step(`s${i}`, () => i);
    return sum;
  },
});

/**
 * A durable 10-step workflow on one PostgreSQL server: Rewind (its store in a
 * schema of the bench's database) against DBOS Transact (its system database
 * on the same server), in interleaved rounds, one workflow at a time and
 * IN_FLIGHT at once; then, in a pass of their own, what each commits and
 * writes to the WAL per workflow. A line for Rewind on SQLite (durability
 * 'full') runs in the same rounds.
 */
export async function benchDbos(url: string, scale: number): Promise<void> {
  const dbosModule = await optional<Dbos>('@dbos-inc/dbos-sdk');
  if (dbosModule instanceof Error) {
    note(SECTION, `DBOS skipped: ${dbosModule.message}`);
    return;
  }
  const { DBOS } = dbosModule;
  const tag = Date.now().toString(36);
  const schema = `bench_dbos_${tag}`;
  const sysDb = `dbos_sys_${tag}`;
  const sysUrl = withDatabase(url, sysDb);
  const dir = mkdtempSync(join(tmpdir(), 'rewind-bench-dbos-'));
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const store = await openStore(url, { schema });
  const rewind = createRuntime({ store, workflows: [tenSteps] });
  const sqliteStore = await openStore(`sqlite:${join(dir, 'steps.db')}`);
  const onSqlite = createRuntime({ store: sqliteStore, workflows: [tenSteps] });
  DBOS.setConfig({ name: 'rewind-bench', systemDatabaseUrl: sysUrl, logLevel: 'error' });
  const dbosTenSteps = DBOS.registerWorkflow(
    async (_n: number) => {
      let sum = 0;
      for (let i = 0; i < STEPS; i++) sum += await DBOS.runStep(async () => i, { name: `s${i}` });
      return sum;
    },
    { name: 'benchTenSteps' },
  );
  let launched = false;
  let walInspectCreated = false;
  try {
    await DBOS.launch();
    launched = true;
    note(
      SECTION,
      `DBOS Transact ${versionOf('@dbos-inc/dbos-sdk')} (system database on the same server, log level error) against Rewind ` +
        `(createRuntime, ctx.step ×${STEPS}, PostgreSQL store in schema ${schema}); SQLite at durability 'full'`,
    );
    let id = 0;
    const run = {
      dbos: async () => {
        if ((await dbosTenSteps(id++)) !== 45) throw new Error('DBOS workflow returned a wrong sum');
      },
      rewind: async () => {
        if ((await rewind.start(tenSteps, { n: id }, { runId: `pg-${id++}` })).output !== 45) throw new Error('wrong sum');
      },
      sqlite: async () => {
        if ((await onSqlite.start(tenSteps, { n: id }, { runId: `sq-${id++}` })).output !== 45) throw new Error('wrong sum');
      },
    };
    const rounds = 5;
    for (const width of [1, IN_FLIGHT]) {
      const workflows = Math.max(width, Math.round((width === 1 ? 40 : 160) * scale));
      const mode = width === 1 ? 'one at a time' : `${width} in flight`;
      const DBOS_NAME = `dbos: 10-step workflows, ${mode}`;
      const contestants: Contestant[] = [
        { name: DBOS_NAME, ops: workflows, run: () => inFlight(workflows, width, run.dbos) },
        {
          name: `rewind on postgres: 10-step workflows, ${mode}`,
          ops: workflows,
          run: () => inFlight(workflows, width, run.rewind),
          baseline: DBOS_NAME,
        },
        {
          name: `rewind on sqlite: 10-step workflows, ${mode}`,
          ops: workflows,
          run: () => inFlight(workflows, width, run.sqlite),
          baseline: DBOS_NAME,
        },
      ];
      await measureInTurns(SECTION, 'workflows/s', rounds, contestants);
      const ours = find(SECTION, contestants[1]?.name as string);
      const r = ours && ratio(ours);
      if (r !== undefined)
        target({
          section: SECTION,
          what: `10-step workflow on PostgreSQL ≥ 2× DBOS, ${mode}`,
          met: r >= 2,
          got: `${r.toFixed(2)}× DBOS`,
          why: r >= 2 ? undefined : 'a run alone cannot share its commits with other runs: see the commits per workflow below',
        });
    }

    // What a workflow costs the server, in a pass of its own per engine, started fresh and closed before
    // the counters are read (a backend reports its transaction counts when it exits, or at most once a
    // second): transactions committed in the engine's database (pg_stat_database.xact_commit, read-only
    // ones and the engine's start-up included), commit records in the WAL (write transactions: each one a
    // flush) and WAL bytes.
    await rewind.close();
    await store.close();
    await DBOS.shutdown();
    launched = false;
    // pg_walinspect counts the commit records; created here only if missing, and dropped again.
    const hadWalInspect = (await admin.query("SELECT 1 FROM pg_extension WHERE extname = 'pg_walinspect'")).rowCount === 1;
    walInspectCreated =
      !hadWalInspect &&
      (await admin
        .query('CREATE EXTENSION pg_walinspect')
        .then(() => true)
        .catch(() => false));
    const walCommits = hadWalInspect || walInspectCreated;
    const workflows = Math.round(200 * scale);
    for (const width of [1, IN_FLIGHT]) {
      const mode = width === 1 ? 'one at a time' : `${width} in flight`;
      const dbosCost = await costOf(admin, sysDb, workflows, walCommits, async () => {
        await DBOS.launch();
        launched = true;
        await inFlight(workflows, width, run.dbos);
        await DBOS.shutdown();
        launched = false;
      });
      const rewindCost = await costOf(admin, databaseOf(url), workflows, walCommits, async () => {
        const ownStore = await openStore(url, { schema });
        const own = createRuntime({ store: ownStore, workflows: [tenSteps] });
        await inFlight(workflows, width, async () => {
          await own.start(tenSteps, { n: id }, { runId: `cost-${id++}` });
        });
        await own.close();
        await ownStore.close();
      });
      const show = (c: Cost) =>
        `${fmt(c.transactions)} transactions${c.walCommits === undefined ? '' : ` (${fmt(c.walCommits)} writing)`}, ${fmt(c.walBytes / 1024)} KB of WAL`;
      note(SECTION, `per 10-step workflow on PostgreSQL, ${mode}: rewind ${show(rewindCost)}; dbos ${show(dbosCost)}`);
    }
  } finally {
    if (launched) await DBOS.shutdown();
    await rewind.close().catch(() => {});
    await store.close();
    await onSqlite.close();
    await sqliteStore.close();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    if (walInspectCreated) await admin.query('DROP EXTENSION IF EXISTS pg_walinspect').catch(() => {});
    await admin.query(`DROP DATABASE IF EXISTS ${sysDb} WITH (FORCE)`).catch(() => {});
    await admin.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `total` calls of `one`, `width` at a time. */
async function inFlight(total: number, width: number, one: () => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < total) {
        next++;
        await one();
      }
    }),
  );
}

interface Cost {
  transactions: number;
  walCommits: number | undefined;
  walBytes: number;
}

/** Per workflow while `work` runs `workflows` of them: transactions committed in `database`, and the whole server's commit records and WAL bytes. */
async function costOf(
  admin: pg.Client,
  database: string,
  workflows: number,
  walCommits: boolean,
  work: () => Promise<void>,
): Promise<Cost> {
  const read = async () =>
    (
      await admin.query<{ commits: string; lsn: string }>(
        'SELECT xact_commit AS commits, pg_current_wal_flush_lsn() AS lsn FROM pg_stat_database WHERE datname = $1',
        [database],
      )
    ).rows[0] as { commits: string; lsn: string };
  // Backends that exited report their counts as they go: give them a moment, before and after.
  const settle = () => new Promise((r) => setTimeout(r, 500));
  await settle();
  const before = await read();
  await work();
  await settle();
  const after = await read();
  const { rows } = await admin.query<{ bytes: string; commits: string | null }>(
    `SELECT pg_wal_lsn_diff($1, $2) AS bytes, ${
      walCommits ? `(SELECT count FROM pg_get_wal_stats($2, $1, true) WHERE "resource_manager/record_type" = 'Transaction/COMMIT')` : 'NULL'
    } AS commits`,
    [after.lsn, before.lsn],
  );
  const row = rows[0];
  return {
    transactions: (Number(after.commits) - Number(before.commits)) / workflows,
    walCommits: row?.commits == null ? undefined : Number(row.commits) / workflows,
    walBytes: Number(row?.bytes) / workflows,
  };
}

function databaseOf(url: string): string {
  return decodeURIComponent(new URL(url).pathname.slice(1)) || 'postgres';
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
