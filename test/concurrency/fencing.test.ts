import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime } from '../../src/runtime/index.js';
import { openStore } from '../../src/store/open.js';
import type { EventStore } from '../../src/store/types.js';
import { databaseUrl, uniqueSchema } from '../support/postgres.js';
import { tempDir } from '../support/temp.js';
import { bundleChild } from '../torture/processes.js';
import { CallLedger } from './calls.js';
import { slowWorkflow } from './workflow.js';

// One driver per run, shown with real processes: a run's owner (owner.ts, a
// child process) is paused (SIGSTOP) mid-step past its lease while this
// process takes the run over; once it goes on (SIGCONT) it writes nothing
// more, the fence refusing its appends. And an owner killed mid-step
// (SIGKILL) is taken over at once: its process is gone (SQLite) or its
// session ended (PostgreSQL).

let owner = '';
beforeAll(async () => {
  owner = await bundleChild(join(import.meta.dirname, 'owner.ts'));
}, 60_000);
afterAll(() => rmSync(dirname(owner), { recursive: true, force: true }));

interface Log {
  /** What the owner process opens. */
  url: string;
  /** This process's handle on the same log. */
  store: EventStore;
  dir: string;
}

const backends: [string, () => Promise<Log>][] = [
  [
    'sqlite',
    async () => {
      const dir = tempDir('rewind-fencing-');
      const url = `sqlite:${join(dir, 'log.db')}`;
      return { url, store: await openStore(url), dir };
    },
  ],
];
if (process.env.REWIND_SKIP_POSTGRES !== '1')
  backends.push([
    'postgres',
    async () => {
      const schema = uniqueSchema();
      const url = new URL(databaseUrl());
      url.searchParams.set('schema', schema);
      // Opened here first: the schema is created before the owner process connects.
      return { url: url.toString(), store: await openStore(databaseUrl(), { schema }), dir: tempDir('rewind-fencing-') };
    },
  ]);

const children: ChildProcess[] = [];
const stores: EventStore[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const store of stores.splice(0)) await store.close().catch(() => {});
});

interface OwnerReport {
  returned?: { status: string; version: number };
  threw?: { name: string; code?: string; message: string };
  /** The codes of the appends its store refused. */
  refused: string[];
}

/** The owner process: starts the run, and resolves with its report once it exits on its own. */
function startOwner(
  log: Log,
  runId: string,
  leaseMs: number,
  slowMs: number,
): { child: ChildProcess; ended: Promise<OwnerReport>; printed: (line: string) => Promise<void> } {
  const child = spawn(process.execPath, [owner, log.url, join(log.dir, 'calls.db'), runId, String(leaseMs), String(slowMs)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const ended = new Promise<OwnerReport>((resolve, reject) =>
    child.on('exit', (code, signal) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code === 0 && last.startsWith('{')) resolve(JSON.parse(last));
      else reject(new Error(`owner exited ${code ?? signal}: ${err || out}`));
    }),
  );
  /** Resolves once the owner has printed this line. */
  const printed = async (line: string) => {
    const deadline = Date.now() + 20_000;
    while (!out.split('\n').includes(line)) {
      if (Date.now() > deadline) throw new Error(`the owner never printed "${line}": ${out}`);
      await sleep(5);
    }
  };
  return { child, ended, printed };
}

/**
 * Waits until the owner is inside the slow step: its start journaled, and its
 * function called (the call comes just after the journal's append, so a pause
 * or a kill between the two would find no call in flight).
 */
async function inSlowStep(log: Log, ledger: CallLedger, runId: string, pid: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const events = await log.store.read(`run-${runId}`);
    if (
      events.some((e) => e.type === 'StepStarted' && (e.data as { name: string }).name === 'slow') &&
      callsOf(ledger, runId).slow?.includes(pid)
    )
      return;
    await sleep(10);
  }
  throw new Error(`run ${runId} never started its slow step`);
}

/** The store as it is, noting when an acquire of a lease first succeeds. */
function acquisitionsTimed(inner: EventStore): { store: EventStore; acquiredAt: () => number | undefined } {
  let at: number | undefined;
  const store = new Proxy(inner, {
    get(target, prop) {
      if (prop === 'acquireLease')
        return async (...args: Parameters<EventStore['acquireLease']>) => {
          const got = await target.acquireLease(...args);
          if (got.acquired) at ??= Date.now();
          return got;
        };
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store, acquiredAt: () => at };
}

/** Who called each step of the run, in order: step name → pids. */
function callsOf(ledger: CallLedger, runId: string): Record<string, number[]> {
  const by: Record<string, number[]> = {};
  for (const c of ledger.calls()) {
    // A step's key is <runId>:<seq>:<name>.
    const [run, , name = c.key] = c.key.split(':');
    if (run !== runId) continue;
    by[name] = [...(by[name] ?? []), c.pid];
  }
  return by;
}

describe.each(backends)('one driver per run on %s', (backend, open) => {
  it('an owner paused past its lease while another process took the run over writes nothing once it goes on', {
    timeout: 60_000,
  }, async () => {
    const log = await open();
    stores.push(log.store);
    const ledger = new CallLedger(join(log.dir, 'calls.db'));
    const leaseMs = 300;
    const runId = 'fenced';
    const { child, ended } = startOwner(log, runId, leaseMs, 1_500);
    await inSlowStep(log, ledger, runId, child.pid as number);
    child.kill('SIGSTOP');
    // Past the lease (on PostgreSQL too: a paused process keeps its session, so its lease must lapse).
    await sleep(leaseMs + 200);

    const runtime = createRuntime({ store: log.store, workflows: [slowWorkflow(ledger, 20)], leaseMs });
    const info = await runtime.resume(runId);
    expect(info.status).toBe('completed');
    expect(info.drivenBy).toBeUndefined();
    const before = await log.store.readAll();
    const head = await log.store.headPosition();

    child.kill('SIGCONT');
    const report = await ended;
    // The old owner met its lost lease at its next write: refused by the fence, nothing written.
    expect(report.refused).toContain('LEASE_LOST');
    expect(report.refused.every((code) => code === 'LEASE_LOST')).toBe(true);
    expect(report.threw).toBeUndefined();

    const after = await log.store.readAll();
    expect(after.map((e) => [e.id, e.streamId, e.version])).toEqual(before.map((e) => [e.id, e.streamId, e.version]));
    expect(await log.store.headPosition()).toBe(head);
    expect((await runtime.get(runId)).status).toBe('completed');
    expect(await log.store.verify()).toMatchObject({ ok: true });
    // The slow step ran in both processes (the owner's call was in flight when it lost the run), the others once, here.
    expect(callsOf(ledger, runId)).toEqual({ slow: [child.pid, process.pid], b: [process.pid], c: [process.pid] });
    await runtime.close();
    ledger.close();
  });

  it('an owner whose lease another holder took, but has not written under yet, is refused by the fence alone, and waits for the run to rest', {
    timeout: 60_000,
  }, async () => {
    const log = await open();
    stores.push(log.store);
    const ledger = new CallLedger(join(log.dir, 'calls.db'));
    const leaseMs = 300;
    const runId = 'taken';
    const stream = `run-${runId}`;
    const { child, ended, printed } = startOwner(log, runId, leaseMs, 1_000);
    await inSlowStep(log, ledger, runId, child.pid as number);
    child.kill('SIGSTOP');
    await sleep(leaseMs + 200);
    // The new holder writes nothing: the owner's next append would still find the version it expects.
    const taken = await log.store.acquireLease(stream, 'next-holder', 60_000);
    if (!taken.acquired) throw new Error('the lapsed lease was not free');
    const before = await log.store.readAll();

    child.kill('SIGCONT');
    await printed('refused LEASE_LOST');
    expect((await log.store.readAll()).map((e) => e.id)).toEqual(before.map((e) => e.id));
    // Its start() does not return a run that is not at rest: it waits while another holds the run.
    await sleep(leaseMs);
    expect(child.exitCode).toBeNull();

    // The holder lets go without having written: the owner drives the run again (the slow step anew) and finishes it.
    await log.store.releaseLease(stream, 'next-holder', taken.lease.epoch);
    const report = await ended;
    expect(report.returned).toEqual({ status: 'completed', version: expect.any(Number) });
    expect(report.refused).toEqual(['LEASE_LOST']);
    expect(await log.store.verify()).toMatchObject({ ok: true });
    expect(callsOf(ledger, runId)).toEqual({ slow: [child.pid, child.pid], b: [child.pid], c: [child.pid] });
    ledger.close();
  });

  it('an owner killed mid-step is taken over at once, long before its lease would lapse: its process (SQLite) or session (PostgreSQL) is gone', {
    timeout: 60_000,
  }, async () => {
    const log = await open();
    stores.push(log.store);
    const ledger = new CallLedger(join(log.dir, 'calls.db'));
    // A lease long enough that waiting it out would show.
    const leaseMs = 10_000;
    const runId = 'killed';
    const { child, ended } = startOwner(log, runId, leaseMs, 60_000);
    ended.catch(() => {});
    await inSlowStep(log, ledger, runId, child.pid as number);
    const timed = acquisitionsTimed(log.store);
    const runtime = createRuntime({ store: timed.store, workflows: [slowWorkflow(ledger, 20)], leaseMs });

    child.kill('SIGKILL');
    const killedAt = Date.now();
    const info = await runtime.resume(runId);
    const takeover = (timed.acquiredAt() as number) - killedAt;
    expect(info.status).toBe('completed');
    expect(takeover).toBeLessThan(3_000);
    expect(await log.store.verify()).toMatchObject({ ok: true });
    expect(callsOf(ledger, runId)).toEqual({ slow: [child.pid, process.pid], b: [process.pid], c: [process.pid] });
    await runtime.close();
    ledger.close();
  });
});
