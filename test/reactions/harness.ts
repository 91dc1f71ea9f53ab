import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EventEnvelope } from '../../src/events/envelope.js';
import { reactionStatuses } from '../../src/runtime/index.js';
import { openStore } from '../../src/store/open.js';
import type { EventStore } from '../../src/store/types.js';
import { CallLedger } from '../concurrency/calls.js';
import { BOXES, pingsPerBox, sourceEvent } from './world.js';

export interface ReactionsTorture {
  url: string;
  dir: string;
  /** The bundled child (child.ts). */
  child: string;
  mode: 'safe' | 'unsafe';
  /** Worker processes at once. */
  processes: number;
  /** SIGKILLs from outside, spread over the appends (each killed process replaced). */
  kills: number;
  /** Pauses past the lease (SIGSTOP, twice the workers' 1 s lease, SIGCONT): another process takes the reactions and the runs over meanwhile. */
  stops?: number;
  /** How many processes kill themselves just before a store of a reaction's position (after acting on the page): at their n-th store, n from 1 to 4. */
  selfKills: number;
  /** Events appended (a multiple of 1,000): one in 10 starts a run, one in 20 signals a mailbox run. */
  events: number;
  /** How long the appends are spread over. */
  appendMs: number;
}

export interface TortureOutcome {
  /** Order events with no run, or more than one. */
  starts: string[];
  /** Ping events whose signal is missing or sent twice, and mailbox runs that did not get their pings. */
  signals: string[];
  /** Step attempts called more often than journaled, beyond one per killed process. */
  doubles: string[];
  /** Anything else: runs that did not complete, a parked reaction, verify, a child's error. */
  violations: string[];
  killed: number;
  selfKilled: number;
  /** Runs in the log, and signals in the mailboxes. */
  runs: number;
  sent: number;
}

type Plan = Omit<ReactionsTorture, 'url' | 'dir' | 'child'>;

/** The torture: 10,000 events, two workers, 20 kills from outside, two pauses past the lease, eight deaths just before storing a position. */
export const TORTURE: Plan = { mode: 'safe', events: 10_000, processes: 2, kills: 20, stops: 2, selfKills: 8, appendMs: 4_000 };
/** The control: one worker, nothing killed. */
export const CONTROL: Plan = { mode: 'safe', events: 2_000, processes: 1, kills: 0, selfKills: 0, appendMs: 2_000 };
/** The mutation: run ids not derived from the event, and six deaths just before storing a position. */
export const MUTATION: Plan = { mode: 'unsafe', events: 2_000, processes: 2, kills: 0, selfKills: 6, appendMs: 2_000 };
/** What must be empty after any torture of the safe reactions. */
export const CLEAN = { starts: [], signals: [], doubles: [], violations: [] };

/** Appends the events while worker processes run the reactions and get killed; then waits for everything to settle and holds the log to the events. */
export async function tortureReactions(o: ReactionsTorture): Promise<TortureOutcome> {
  const ledgerFile = join(o.dir, 'calls.db');
  const violations: string[] = [];
  const victims = new Set<number>();
  let selfKilled = 0;
  let launched = 0;
  let stopping = false;
  const running = new Set<ChildProcess>();
  const exits: Promise<void>[] = [];
  const launch = (): ChildProcess => {
    // Until `selfKills` processes have died by their own hand, each new one is set to, at its 1st to 4th store of a position
    // (one killed from outside first does not count: under load a process may not live to act before the next kill).
    const nth = !stopping && selfKilled < o.selfKills ? 1 + (launched % 4) : 0;
    launched++;
    const child = spawn(process.execPath, [o.child, o.url, ledgerFile, o.mode, String(nth), String(o.events)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    running.add(child);
    exits.push(
      new Promise((resolve) =>
        child.on('exit', (code, signal) => {
          running.delete(child);
          if (signal === 'SIGKILL') {
            victims.add(child.pid as number);
            if (!killedByUs.has(child.pid as number)) selfKilled++;
            if (!stopping) launch();
          } else if (signal === 'SIGTERM' && stopping && !err) {
            // Stopped while still loading, before its handler (installed before its worker starts): it had done nothing.
          } else if (code !== 0 || err) violations.push(`worker ${child.pid} exited ${code ?? signal}: ${err.slice(0, 2000)}`);
          resolve();
        }),
      ),
    );
    return child;
  };
  const killedByUs = new Set<number>();
  for (let p = 0; p < o.processes; p++) launch();

  const store = await openStore(o.url);
  const ledger = new CallLedger(ledgerFile);
  try {
    // The events, in 50 appends spread over appendMs, with the kills among them.
    const batches = 50;
    const per = o.events / batches;
    let lastSource = 0;
    const spread = (n: number, offset: number) =>
      new Set(Array.from({ length: n }, (_, k) => Math.floor(((k + offset) * batches) / Math.max(1, n))));
    const killAt = spread(o.kills, 0.5);
    const stopAt = spread(o.stops ?? 0, 0.25);
    for (let b = 0; b < batches; b++) {
      const byStream = new Map<string, { type: string; data: unknown }[]>();
      for (let i = b * per; i < (b + 1) * per; i++) {
        const { streamId, event } = sourceEvent(i);
        byStream.set(streamId, [...(byStream.get(streamId) ?? []), event]);
      }
      const written = await store.appendMany([...byStream].map(([streamId, events]) => ({ streamId, events: events as never })));
      lastSource = Math.max(lastSource, ...written.map((w) => w.position));
      if (killAt.has(b)) {
        const victim = [...running][b % Math.max(1, running.size)];
        if (victim?.pid) {
          killedByUs.add(victim.pid);
          victim.kill('SIGKILL');
        }
      }
      if (stopAt.has(b)) {
        const paused = [...running][0];
        if (paused?.pid) {
          victims.add(paused.pid);
          paused.kill('SIGSTOP');
          await sleep(2_000);
          paused.kill('SIGCONT');
        }
      }
      await sleep(o.appendMs / batches);
    }
    await settle(store, lastSource, violations);
  } finally {
    stopping = true;
    for (const child of running) child.kill('SIGTERM');
    await Promise.all(exits);
  }
  try {
    return { ...(await check(store, o.events, ledger, victims, violations)), killed: killedByUs.size, selfKilled };
  } finally {
    ledger.close();
    await store.close();
  }
}

/** Until every order has its run completed and every mailbox run completed (or two minutes passed). */
async function settle(store: EventStore, lastSource: number, violations: string[]): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const statuses = await reactionStatuses(store);
    const parked = statuses.filter((s) => s.state === 'parked');
    if (parked.length > 0) {
      violations.push(`parked: ${JSON.stringify(parked)}`);
      return;
    }
    const caughtUp = statuses.length === 2 && statuses.every((s) => s.position >= lastSource);
    if (caughtUp && (await unfinished(store)) === 0) return;
    if (Date.now() > deadline) {
      violations.push(`not settled after 2 minutes: ${await unfinished(store)} runs unfinished, ${JSON.stringify(statuses)}`);
      return;
    }
    await sleep(200);
  }
}

/** Runs not completed: the run streams less the RunCompleted events (a run completes once), two reads rather than one per run. */
async function unfinished(store: EventStore): Promise<number> {
  let completed = 0;
  for (let from = 0; ; ) {
    const page = await store.readAll({ from, limit: 5000, filter: { streamPrefix: 'run-', types: ['RunCompleted'] } });
    completed += page.length;
    if (page.length < 5000) break;
    from = (page.at(-1) as EventEnvelope).position + 1;
  }
  return (await allStreams(store, 'run-')).length - completed;
}

async function allStreams(store: EventStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (let after: string | undefined; ; ) {
    const page = await store.listStreams({ prefix, limit: 1000, ...(after ? { after } : {}) });
    out.push(...page.map((s) => s.streamId));
    if (page.length < 1000) return out;
    after = page.at(-1)?.streamId;
  }
}

async function check(
  store: EventStore,
  events: number,
  ledger: CallLedger,
  victims: Set<number>,
  violations: string[],
): Promise<Omit<TortureOutcome, 'killed' | 'selfKilled'>> {
  const source: EventEnvelope[] = [];
  for (let from = 0; ; ) {
    const page = await store.readAll({ from, limit: 5000, filter: { streamPrefix: 'src-' } });
    source.push(...page);
    if (page.length < 5000) break;
    from = (page.at(-1) as EventEnvelope).position + 1;
  }
  if (source.length !== events) violations.push(`${source.length} source events, not ${events}`);

  // Every order started exactly one run (its id derived from the event), and it completed; no other fulfil run exists.
  const starts: string[] = [];
  const runs = await allStreams(store, 'run-');
  const fulfilRuns = new Map<number, string[]>();
  const journal = new Map<string, number>();
  for (const streamId of runs) {
    const events = await store.read(streamId);
    const started = events[0]?.data as { workflow: string; input: { order?: number } };
    if (started.workflow === 'fulfil') {
      const order = started.input.order as number;
      fulfilRuns.set(order, [...(fulfilRuns.get(order) ?? []), streamId]);
    }
    if (events.at(-1)?.type !== 'RunCompleted') violations.push(`${streamId} did not complete: ${events.at(-1)?.type}`);
    for (const e of events.filter((x) => x.type === 'StepStarted')) {
      const d = e.data as { idempotencyKey: string; attempt: number };
      const a = `${d.idempotencyKey} #${d.attempt}`;
      journal.set(a, (journal.get(a) ?? 0) + 1);
    }
  }
  for (const e of source.filter((x) => x.type === 'Order')) {
    const order = (e.data as { order: number }).order;
    const got = fulfilRuns.get(order) ?? [];
    if (got.length !== 1) starts.push(`order ${order} (event ${e.id}): ${got.length} runs`);
    else if (got[0] !== `run-orders:${e.id}`) starts.push(`order ${order}: run ${got[0]}, not run-orders:${e.id}`);
  }
  if (fulfilRuns.size !== events / 10) starts.push(`${fulfilRuns.size} orders have runs, not ${events / 10}`);

  // Every ping is exactly one signal in its box's mailbox, under the event's key, and each box got all its pings.
  const signals: string[] = [];
  const pings = source.filter((x) => x.type === 'Ping');
  const sent = new Map<string, number>();
  for (let box = 0; box < BOXES; box++) {
    const mailbox = await store.read(`signals-box-${box}`);
    for (const s of mailbox.filter((m) => m.type === 'SignalSent')) sent.set(s.id, (sent.get(s.id) ?? 0) + 1);
    const [last] = await store.read(`run-box-${box}`, { direction: 'backward', limit: 1 });
    const output = (last?.data as { output?: number[] } | undefined)?.output;
    if (output?.length !== pingsPerBox(events)) signals.push(`box ${box} ended with ${JSON.stringify(output)}`);
  }
  for (const p of pings) {
    const box = (p.data as { box: number }).box;
    const n = sent.get(`signals-box-${box}:pings:${p.id}`) ?? 0;
    if (n !== 1) signals.push(`ping ${p.id} to box ${box}: ${n} signals`);
  }
  const totalSent = [...sent.values()].reduce((a, b) => a + b, 0);
  if (totalSent !== pings.length) signals.push(`${totalSent} signals sent for ${pings.length} pings`);

  // Each journaled attempt of a step is one call, but for one more per process killed while it ran.
  const doubles: string[] = [];
  const byAttempt = new Map<string, number[]>();
  for (const c of ledger.calls()) {
    const a = `${c.key} #${c.attempt}`;
    byAttempt.set(a, [...(byAttempt.get(a) ?? []), c.pid]);
  }
  for (const [a, pids] of byAttempt) {
    const journaled = journal.get(a) ?? 0;
    const allowed = new Set(pids.filter((p) => victims.has(p))).size;
    if (journaled === 0 || pids.length - journaled > allowed) doubles.push(`${a}: ${pids.length} calls for ${journaled} journaled`);
  }
  const report = await store.verify();
  if (!report.ok) violations.push(`verify: ${JSON.stringify(report).slice(0, 500)}`);
  return { starts, signals, doubles, violations, runs: runs.length, sent: totalSent };
}
