// One process of the concurrency torture: for a while, acts at random on the
// shared runs as an app, a webhook handler and an operator would (start,
// resume, signal, rollback, cancel, retry a compensation), a few at a time,
// then waits for what it started to settle and says what it met.
// Usage: actor <store url> <calls ledger file> <runs> <duration ms> <lease ms> <safe|unsafe>
//   unsafe: ownership off (every lease granted, no fence: withoutOwnership): the mutation that must turn the torture red.
import { setTimeout as sleep } from 'node:timers/promises';
import { withoutOwnership } from '../../src/bench/without-ownership.js';
import { RewindError } from '../../src/events/errors.js';
import { createRuntime } from '../../src/runtime/index.js';
import { openStore } from '../../src/store/open.js';
import { CallLedger } from './calls.js';
import { chaosWorkflow } from './workflow.js';

const [url, ledgerFile, runs, duration, leaseMs, mode] = process.argv.slice(2) as [string, string, string, string, string, string];
const ledger = new CallLedger(ledgerFile);
const opened = await openStore(url, { durability: 'normal' });
const store = mode === 'unsafe' ? withoutOwnership(opened) : opened;
const workflow = chaosWorkflow(ledger);
const runtime = createRuntime({
  store,
  workflows: [workflow],
  leaseMs: Number(leaseMs),
  compensationRetry: { attempts: 2, initialDelayMs: 5 },
});

/** Refusals a caller meets when the run is not where the request fits: expected, and answered with a typed error. */
const EXPECTED = new Set(['RUN_STATE', 'RUN_NOT_FOUND', 'CHECKPOINT_NOT_FOUND']);
const unexpected: string[] = [];
const done: Record<string, number> = {};
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)] as T;
const wait = () => Math.random() < 0.5;

async function act(): Promise<void> {
  const runId = `r${Math.floor(Math.random() * Number(runs))}`;
  const flaky = Number(runId.slice(1)) % 3 === 0;
  const action = pick(['start', 'start', 'resume', 'signal', 'signal', 'rollback', 'cancel', 'retry'] as const);
  try {
    if (action === 'start') await runtime.start(workflow, { flaky }, { runId });
    else if (action === 'resume') await runtime.resume(runId, { wait: wait() });
    else if (action === 'signal') await runtime.signal(runId, 'go', { from: process.pid });
    else if (action === 'rollback')
      await runtime.rollback(
        runId,
        { to: pick(['latest', 'start', 'after-a']), reason: 'chaos', after: pick(['stop', 'retry']) },
        { wait: wait() },
      );
    else if (action === 'cancel') await runtime.cancel(runId, 'chaos', { wait: wait() });
    else await runtime.retryCompensation(runId, undefined, { wait: wait() });
    done[action] = (done[action] ?? 0) + 1;
  } catch (error) {
    if (error instanceof RewindError && EXPECTED.has(error.code)) return;
    unexpected.push(`${action} ${runId}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  }
}

process.stdout.write('ready\n');
const deadline = Date.now() + Number(duration);
const inflight = new Set<Promise<void>>();
while (Date.now() < deadline) {
  while (inflight.size >= 3) await Promise.race(inflight);
  const p: Promise<void> = act().finally(() => inflight.delete(p));
  inflight.add(p);
  await sleep(Math.floor(Math.random() * 20));
}
await Promise.all(inflight);
process.stdout.write(`${JSON.stringify({ done, unexpected })}\n`);
process.exit(0);
