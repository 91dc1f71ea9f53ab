import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { RunStateError } from '../runtime/errors.js';
import { createRuntime, defineWorkflow } from '../runtime/index.js';
import { openStore } from '../store/open.js';
import type { EventStore, LeaseAttempt } from '../store/types.js';
import { type Contestant, fmt1, measureInTurns, note, quantile, record, recordLatency } from './lib.js';
import { withoutOwnership } from './without-ownership.js';

const SECTION = 'ownership';
/** The steps of the run a request is made to: short, so a request meets it mid-step at a random point. */
const STEP_MS = 10;
// The owner processes run what this file runs: the compiled JavaScript, or the TypeScript under tsx.
const CHILD = import.meta.filename.endsWith('.ts')
  ? ['--import', 'tsx', fileURLToPath(new URL('./ownership-child.ts', import.meta.url))]
  : [fileURLToPath(new URL('./ownership-child.js', import.meta.url))];

/** Short steps after a checkpoint, without end: a rollback to the checkpoint with after 'retry' starts them again. */
export const loopWorkflow = defineWorkflow<null, null, { type: 'None'; data: null }, number>({
  name: 'bench-own-loop',
  initialState: null,
  apply: (s) => s,
  run: async (ctx) => {
    await ctx.checkpoint('top');
    for (let i = 0; ; i++) await ctx.step(`s${i}`, ({ signal }) => sleep(STEP_MS, i, { signal }));
  },
});

/** A first step that takes `ms` (the owner is killed inside it), then one more. */
export function hangWorkflow(ms: number) {
  return defineWorkflow<null, null, { type: 'None'; data: null }, string>({
    name: 'bench-own-hang',
    initialState: null,
    apply: (s) => s,
    run: async (ctx) => {
      await ctx.step('hang', ({ signal }) => sleep(ms, 'up', { signal }));
      await ctx.step('after', () => 'done');
      return 'done';
    },
  });
}

const tenSteps = defineWorkflow<null, null, { type: 'None'; data: null }, number>({
  name: 'bench-own-ten',
  initialState: null,
  apply: (s) => s,
  run: async (ctx) => {
    let sum = 0;
    for (let i = 0; i < 10; i++) sum += await ctx.step(`s${i}`, () => i);
    return sum;
  },
});

interface Backend {
  label: 'sqlite' | 'postgres';
  /** What an owner process opens. */
  url: string;
  /** This process's handle on the same log. */
  store: EventStore;
}

/**
 * Issue 27, one driver per run: what ownership costs and how quickly it acts,
 * on SQLite and PostgreSQL. A request (a rollback) made from one process to a
 * run another process drives, timed until its effect is in the log; the
 * takeover of a run whose owner process was SIGKILLed mid-step; and the
 * lease's cost on a 10-step workflow, against the same runtime with every
 * lease granted and no fence.
 */
export async function benchOwnership(scale: number, databaseUrl: (() => Promise<string>) | undefined): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-bench-own-'));
  const backends: Backend[] = [];
  let dropSchema: (() => Promise<void>) | undefined;
  try {
    const sqlite = `sqlite:${join(dir, 'own.db')}`;
    backends.push({ label: 'sqlite', url: sqlite, store: await openStore(sqlite) });
    if (databaseUrl) {
      const base = await databaseUrl();
      const schema = `bench_own_${Date.now().toString(36)}`;
      const url = new URL(base);
      url.searchParams.set('schema', schema);
      // Opened here first, so the schema exists before an owner process connects.
      backends.push({ label: 'postgres', url: url.toString(), store: await openStore(base, { schema }) });
      dropSchema = async () => {
        const { default: pg } = await import('pg');
        const c = new pg.Client({ connectionString: base });
        await c.connect();
        await c.query(`DROP SCHEMA ${schema} CASCADE`).catch(() => {});
        await c.end();
      };
    }

    const requests = Math.max(20, Math.round(100 * scale));
    const perRun = 10;
    for (const b of backends) {
      const delays = await requestDelays(b, requests, perRun);
      const name = (what: string) => `rollback request to action on ${b.label}, another process driving, ${what} of ${requests}`;
      latency(name('median'), quantile(delays.rollback, 0.5));
      latency(name('p99'), quantile(delays.rollback, 0.99));
      note(
        SECTION,
        `requests on ${b.label}: the rollback call itself (checked, posted, the lease found held elsewhere) median ` +
          `${fmt1(quantile(delays.call, 0.5))} ms; a cancel (which aborts the step in flight) to RunCancelled in the log, ` +
          `median of ${delays.cancel.length} ${fmt1(quantile(delays.cancel, 0.5))} ms`,
      );
    }
    note(
      SECTION,
      `request to action: a rollback (after 'retry') posted with rollback(…, { wait: false }) from the bench process to a run an owner ` +
        `process drives in ${STEP_MS} ms steps (${perRun} requests a run, then a cancel ends it and the owner starts another), timed from ` +
        'the call until its RollbackRequested (one append with its RequestHandled) is in the log, polled every millisecond; the owner ' +
        'learns of it by its store watch (every 20 ms) and carries it out once the step in flight ends',
    );

    const kills = Math.max(3, Math.round(5 * scale));
    for (const b of backends) {
      const trials: { ms: number; left: number }[] = [];
      for (let i = 0; i < kills; i++) trials.push(await takeover(b, i));
      latency(
        `takeover after the owner's SIGKILL on ${b.label}, lease 5 s, median of ${kills}`,
        quantile(
          trials.map((t) => t.ms),
          0.5,
        ),
      );
      const each = trials.map((t) => `${Math.round(t.ms)} (lease left ${Math.round(t.left)})`).join(', ');
      note(SECTION, `takeover on ${b.label}, ms after the kill: ${each}`);
    }
    note(
      SECTION,
      "takeover: from the owner's SIGKILL (mid-step) until resume() in the bench process acquires the run's lease. The acquire frees " +
        'the lease of a holder that is gone (SQLite: its process; PostgreSQL: its session), whatever was left of it',
    );

    for (const b of backends) await leaseCost(b, scale);
  } finally {
    for (const b of backends) await b.store.close().catch(() => {});
    await dropSchema?.();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Starts an owner process; resolves with its last line once it exits on its own (a kill resolves with ''). */
function owner(url: string, mode: 'loop' | 'hang', runId: string, runs = 1): { child: ChildProcess; ended: Promise<string> } {
  const child = spawn(process.execPath, [...CHILD, url, mode, runId, String(runs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const ended = new Promise<string>((resolve, reject) =>
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') return resolve('');
      if (code === 0) return resolve(out.trim().split('\n').at(-1) ?? '');
      reject(new Error(`owner process exited ${code ?? signal}: ${err || out}`));
    }),
  );
  ended.catch(() => {});
  return { child, ended };
}

async function until(what: string, ok: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Requests made from here to each run an owner process drives, in ms. */
interface Delays {
  /** Rollbacks: from the call until the effect is in the log. */
  rollback: number[];
  /** The rollback call alone (checked, posted, the lease found held elsewhere). */
  call: number[];
  /** Cancels, one per run, as the rollbacks. */
  cancel: number[];
}

/**
 * Rollback requests made from here to runs an owner process drives, `perRun`
 * to each run (so that no run grows long), then a cancel that ends it and the
 * owner starts the next. Each delay runs from the call until the request's
 * effect is in the log: the request is the inbox's next event, its
 * RequestHandled (one append with the effect) the one after.
 */
async function requestDelays(b: Backend, n: number, perRun: number): Promise<Delays> {
  const runs = Math.ceil(n / perRun);
  const prefix = `loop-${b.label}`;
  const { child, ended } = owner(b.url, 'loop', prefix, runs);
  const runtime = createRuntime({ store: b.store, workflows: [loopWorkflow] });
  const delays: Delays = { rollback: [], call: [], cancel: [] };
  /** Makes the request (again while the run is where it is refused for now); its delay until it is carried out, and the call's. */
  const timed = async (inbox: string, request: () => Promise<unknown>): Promise<[number, number]> => {
    for (;;) {
      const seen = await b.store.streamVersion(inbox);
      const t = performance.now();
      try {
        await request();
      } catch (error) {
        // A rollback being carried out (its compensations come from a replay) takes no other request: again in a moment.
        if (!(error instanceof RunStateError)) throw error;
        await sleep(10);
        continue;
      }
      const call = performance.now() - t;
      while ((await b.store.streamVersion(inbox)) < seen + 2) await sleep(1);
      return [performance.now() - t, call];
    }
  };
  try {
    for (let k = 0; k < runs; k++) {
      const runId = `${prefix}-${k}`;
      const inbox = `signals-${runId}`;
      await until(`the owner to drive ${runId}`, async () => (await b.store.streamVersion(`run-${runId}`)) >= 5);
      for (let i = 0; i < perRun && delays.rollback.length < n; i++) {
        // At a random moment of the step in flight and of the owner's 20 ms watch.
        await sleep(20 + Math.random() * 40);
        const [delay, call] = await timed(inbox, () =>
          runtime.rollback(runId, { to: 'top', reason: 'bench', after: 'retry' }, { wait: false }),
        );
        delays.rollback.push(delay);
        delays.call.push(call);
      }
      await sleep(20 + Math.random() * 40);
      delays.cancel.push((await timed(inbox, () => runtime.cancel(runId, 'bench over', { wait: false })))[0]);
      const handled = (await b.store.read(inbox)).filter((e) => e.type === 'RequestHandled');
      const refused = handled.filter((e) => (e.data as { outcome: string }).outcome !== 'done').length;
      if (refused) note(SECTION, `${refused} of the ${handled.length} requests to ${runId} were refused by its owner`);
    }
    const last = await ended;
    if (!last.includes(`"cancelled":${runs}`)) note(SECTION, `the owner of the request runs on ${b.label} ended: ${last}`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await runtime.close();
  }
  return delays;
}

/** One owner process killed mid-step: ms from the kill until a resume here acquires the run's lease, and how long the lease had left then. */
async function takeover(b: Backend, i: number): Promise<{ ms: number; left: number }> {
  const runId = `hang-${b.label}-${i}`;
  const { child, ended } = owner(b.url, 'hang', runId);
  let acquiredAt: number | undefined;
  const timed = new Proxy(b.store, {
    get(target, prop) {
      if (prop === 'acquireLease')
        return async (...args: Parameters<EventStore['acquireLease']>) => {
          const got = await target.acquireLease(...args);
          if (got.acquired) acquiredAt ??= performance.now();
          return got;
        };
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const runtime = createRuntime({ store: timed, workflows: [hangWorkflow(0)] });
  try {
    await until('the owner to start its step', async () => (await b.store.read(`run-${runId}`)).some((e) => e.type === 'StepStarted'));
    // Killed at a random point of the lease's renewal (every third of 5 s).
    await sleep(100 + Math.random() * 1_600);
    const lease = await b.store.leaseOf(`run-${runId}`);
    child.kill('SIGKILL');
    const killedAt = performance.now();
    const left = (lease?.until ?? 0) - Date.now();
    await ended;
    const info = await runtime.resume(runId);
    if (info.status !== 'completed') note(SECTION, `the run taken over on ${b.label} ended ${info.status}`);
    return { ms: (acquiredAt as number) - killedAt, left };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await runtime.close();
  }
}

/** Writing calls to the store (each its own transaction): appends, and lease acquires, renewals and releases. */
interface Writes {
  appends: number;
  leases: number;
}

function counted(inner: EventStore, writes: Writes): EventStore {
  return new Proxy(inner, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      const bound = value.bind(target);
      if (prop === 'append' || prop === 'appendMany')
        return (...args: unknown[]) => {
          writes.appends++;
          return bound(...args);
        };
      if (prop === 'acquireLease' || prop === 'renewLeases' || prop === 'releaseLease')
        return (...args: unknown[]) => {
          writes.leases++;
          return bound(...args);
        };
      return bound;
    },
  });
}

/** 10-step workflows one at a time, with the lease and without, in turns. */
async function leaseCost(b: Backend, scale: number): Promise<void> {
  const runs = Math.max(5, Math.round(30 * scale));
  const rounds = 7;
  const warmups = 1;
  const leased: Writes = { appends: 0, leases: 0 };
  const bare: Writes = { appends: 0, leases: 0 };
  const withLease = createRuntime({ store: counted(b.store, leased), workflows: [tenSteps] });
  const without = createRuntime({ store: withoutOwnership(counted(b.store, bare)), workflows: [tenSteps] });
  const contestant = (name: string, runtime: typeof without, tag: string, baseline?: string): Contestant => ({
    name,
    ops: runs,
    ...(baseline ? { baseline } : {}),
    run: async (round) => {
      for (let k = 0; k < runs; k++) await runtime.start(tenSteps, null, { runId: `${tag}-${round}-${k}` });
    },
  });
  const bareName = `10-step workflow on ${b.label}, one at a time, without the lease (every lease granted, no fence)`;
  const leasedName = `10-step workflow on ${b.label}, one at a time, with the lease`;
  try {
    await measureInTurns(
      SECTION,
      'workflows/s',
      rounds,
      [contestant(bareName, without, `bare-${b.label}`), contestant(leasedName, withLease, `leased-${b.label}`, bareName)],
      warmups,
    );
  } finally {
    await withLease.close();
    await without.close();
  }
  const total = runs * (rounds + warmups);
  const per = (w: Writes) => `${fmt1(w.appends / total)} appends + ${fmt1(w.leases / total)} lease writes`;
  note(SECTION, `writing calls per 10-step workflow on ${b.label}: with the lease ${per(leased)}; without ${per(bare)}`);
}

/** A figure of one measured time, in ms. */
function latency(name: string, ms: number): void {
  recordLatency(SECTION, name, ms);
}
