import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EventEnvelope } from '../../src/events/envelope.js';
import { createRuntime } from '../../src/runtime/index.js';
import { readInbox } from '../../src/runtime/requests.js';
import { openStore } from '../../src/store/open.js';
import { CallLedger } from './calls.js';
import { chaosWorkflow } from './workflow.js';

export interface Chaos {
  url: string;
  dir: string;
  /** The bundled actor (bundleChild). */
  actor: string;
  processes: number;
  runs: number;
  durationMs: number;
  leaseMs: number;
  mode: 'safe' | 'unsafe';
  /** Pauses past the lease (SIGSTOP, then SIGCONT) and kills (SIGKILL, a fresh process in its place). */
  stops?: number;
  kills?: number;
}

export interface ChaosOutcome {
  /** Calls beyond one per journaled attempt that no stopped or killed process made. */
  doubles: string[];
  /** Calls with no journaled attempt. */
  unjournaled: string[];
  /** Anything else wrong: a signal used twice, a wait left with its signal unused, a request never carried out, a cancelled run not cancelled, verify. */
  violations: string[];
  /** What the processes did and met. */
  done: Record<string, number>;
  unexpected: string[];
  calls: number;
}

/** What must be empty after any run of the torture: errors no caller should meet, attempts run twice, calls with no attempt, violations. */
export function faults(out: ChaosOutcome): Pick<ChaosOutcome, 'unexpected' | 'doubles' | 'unjournaled' | 'violations'> {
  const { unexpected, doubles, unjournaled, violations } = out;
  return { unexpected, doubles, unjournaled, violations };
}

export const NO_FAULTS = { unexpected: [], doubles: [], unjournaled: [], violations: [] };

/** Runs the processes, pauses and kills some, settles every run, then holds the log against the ledger of calls. */
export async function chaos(o: Chaos): Promise<ChaosOutcome> {
  const ledgerFile = join(o.dir, 'calls.db');
  const args = [o.url, ledgerFile, String(o.runs), String(o.durationMs), String(o.leaseMs), o.mode];
  const reports: { done: Record<string, number>; unexpected: string[] }[] = [];
  const victims = new Set<number>();
  const ended: Promise<void>[] = [];
  const launch = () => {
    const child = spawn(process.execPath, [o.actor, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    ended.push(
      new Promise((resolve, reject) =>
        child.on('exit', (code, signal) => {
          if (signal === 'SIGKILL') return resolve();
          const last = out.trim().split('\n').at(-1) ?? '';
          if (code === 0 && last.startsWith('{')) {
            reports.push(JSON.parse(last));
            return resolve();
          }
          reject(new Error(`actor exited ${code ?? signal}: ${err || out}`));
        }),
      ),
    );
    return child;
  };
  const children: ChildProcess[] = Array.from({ length: o.processes }, launch);
  const third = o.durationMs / 3;
  for (let i = 0; i < (o.stops ?? 0); i++) {
    await sleep(third / Math.max(1, o.stops ?? 1));
    const child = children[i % children.length] as ChildProcess;
    victims.add(child.pid as number);
    child.kill('SIGSTOP');
    await sleep(o.leaseMs * 2);
    child.kill('SIGCONT');
  }
  for (let i = 0; i < (o.kills ?? 0); i++) {
    await sleep(third / Math.max(1, o.kills ?? 1));
    const child = children[(i + 1) % children.length] as ChildProcess;
    victims.add(child.pid as number);
    child.kill('SIGKILL');
    children.push(launch());
  }
  await Promise.all(ended);

  // Every run brought to rest by one more process, as an operator would.
  const store = await openStore(o.url);
  const ledger = new CallLedger(ledgerFile);
  const runtime = createRuntime({ store, workflows: [chaosWorkflow(ledger)], leaseMs: o.leaseMs });
  const violations: string[] = [];
  /** How often each attempt (kind, key, number) was journaled. */
  const journal = new Map<string, number>();
  const attempt = (kind: string, key: string, n: number) => `${kind} ${key} #${n}`;
  const usedSignals = new Map<string, string>();
  try {
    for (let r = 0; r < o.runs; r++) {
      const runId = `r${r}`;
      const events = await store.read(`run-${runId}`);
      if (events.length === 0) continue;
      const info = await runtime.resume(runId);
      if (!['completed', 'failed', 'cancelled', 'rolled_back', 'needs_attention', 'waiting'].includes(info.status))
        violations.push(`${runId} does not rest: ${info.status}`);
      const all = await store.read(`run-${runId}`);
      for (const e of all) record(e);
      const inbox = await readInbox(store, runId);
      if (inbox.pending.length)
        violations.push(`${runId}: requests never carried out: ${inbox.pending.map((p) => p.data.kind).join(', ')}`);
      const cancelled = inbox.requests.some((q) => q.data.kind === 'cancel' && inbox.handled.get(q.id)?.outcome === 'done');
      if (cancelled && info.status !== 'cancelled') violations.push(`${runId} was cancelled but is ${info.status}`);
      if (info.status === 'waiting') {
        const used = new Set(all.filter((e) => e.type === 'SignalReceived').map((e) => (e.data as { signalId: string }).signalId));
        const unused = inbox.signals.filter((s) => s.name === info.waiting?.name && !used.has(s.id));
        if (unused.length)
          violations.push(`${runId} waits for "${info.waiting?.name}" with ${unused.length} such signal(s) unused in its inbox`);
      }
      for (const e of all.filter((x) => x.type === 'SignalReceived')) {
        const id = (e.data as { signalId: string }).signalId;
        const first = usedSignals.get(id);
        if (first && first !== `${runId}@${e.version}`)
          violations.push(`signal ${id} answered two waits: ${first} and ${runId}@${e.version}`);
        usedSignals.set(id, `${runId}@${e.version}`);
      }
    }
    const report = await store.verify();
    if (!report.ok) violations.push(`verify: ${JSON.stringify(report).slice(0, 500)}`);
  } finally {
    await runtime.close();
    await store.close();
  }
  const calls = ledger.calls();
  ledger.close();

  const doubles: string[] = [];
  const unjournaled: string[] = [];
  const byAttempt = new Map<string, number[]>();
  for (const c of calls) {
    const a = attempt(c.kind, c.key, c.attempt);
    byAttempt.set(a, [...(byAttempt.get(a) ?? []), c.pid]);
  }
  for (const [a, pids] of byAttempt) {
    const journaled = journal.get(a) ?? 0;
    if (journaled === 0) unjournaled.push(a);
    // A kill or a pause past the lease may leave one call of an attempt in flight to be run again: one extra call per such process.
    // (An operator's retry of a compensation starts its attempts again under the same key: each is journaled anew.)
    const excess = pids.length - journaled;
    const allowed = new Set(pids.filter((p) => victims.has(p))).size;
    if (excess > allowed) doubles.push(`${a}: ${pids.length} calls for ${journaled} journaled (pids ${pids.join(', ')})`);
  }
  const done: Record<string, number> = {};
  for (const r of reports) for (const [k, v] of Object.entries(r.done)) done[k] = (done[k] ?? 0) + v;
  return { doubles, unjournaled, violations, done, unexpected: reports.flatMap((r) => r.unexpected), calls: calls.length };

  function record(e: EventEnvelope): void {
    const d = e.data as { idempotencyKey?: string; attempt?: number };
    const kind = e.type === 'StepStarted' ? 'step' : e.type === 'CompensationStarted' ? 'compensation' : undefined;
    if (!kind) return;
    const a = attempt(kind, d.idempotencyKey as string, d.attempt as number);
    journal.set(a, (journal.get(a) ?? 0) + 1);
  }
}
