// A run's first owner in the fencing and takeover tests (fencing.test.ts):
// starts one run of slowWorkflow under a short lease, prints "refused <code>"
// as the store refuses an append, then, as one JSON line, what start()
// returned or threw and every append refused, and exits.
// Usage: owner <store url> <calls ledger file> <run id> <lease ms> <slow step ms>
import { createRuntime } from '../../src/runtime/index.js';
import { openStore } from '../../src/store/open.js';
import type { EventStore } from '../../src/store/types.js';
import { CallLedger } from './calls.js';
import { slowWorkflow } from './workflow.js';

const [url, ledgerFile, runId, leaseMs, slowMs] = process.argv.slice(2) as [string, string, string, string, string];
const refused: string[] = [];
const store = refusalsNoted(await openStore(url));
const ledger = new CallLedger(ledgerFile);
const workflow = slowWorkflow(ledger, Number(slowMs));
const runtime = createRuntime({ store, workflows: [workflow], leaseMs: Number(leaseMs) });

let outcome: Record<string, unknown>;
try {
  const info = await runtime.start(workflow, null, { runId });
  outcome = { returned: { status: info.status, version: info.version } };
} catch (error) {
  const e = error as { name?: string; code?: string; message?: string };
  outcome = { threw: { name: e.name, code: e.code, message: e.message } };
}
await runtime.close();
await store.close();
ledger.close();
process.stdout.write(`${JSON.stringify({ ...outcome, refused })}\n`);
process.exit(0);

/** The store as it is, except that an append it refuses is noted (its error's code) before the error goes on. */
function refusalsNoted(inner: EventStore): EventStore {
  const noted =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await fn(...args);
      } catch (error) {
        const code = (error as { code?: string }).code ?? String(error);
        refused.push(code);
        process.stdout.write(`refused ${code}\n`);
        throw error;
      }
    };
  return new Proxy(inner, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      const bound = value.bind(target);
      return prop === 'append' || prop === 'appendMany' ? noted(bound) : bound;
    },
  });
}
