// A process of the ownership bench (ownership.ts): opens the log and drives
// runs as their owner (under their leases, the default 5 s), one after
// another, then prints how many ended how. 'loop': runs <id>-0, <id>-1, …
// of short steps, each until a cancel ends it; 'hang': run <id>, which sits
// in its first step until the process is killed.
// Usage: node ownership-child.js <store url> <loop|hang> <run id> <runs>
import { createRuntime } from '../runtime/index.js';
import { openStore } from '../store/open.js';
import { hangWorkflow, loopWorkflow } from './ownership.js';

const [url, mode, runId, runs] = process.argv.slice(2) as [string, 'loop' | 'hang', string, string];
const store = await openStore(url);
const workflow = mode === 'loop' ? loopWorkflow : hangWorkflow(60 * 60_000);
const runtime = createRuntime({ store, workflows: [workflow] });
const ended: Record<string, number> = {};
for (let k = 0; k < Number(runs); k++) {
  const info = await runtime.start(workflow.name, null, { runId: mode === 'loop' ? `${runId}-${k}` : runId });
  ended[info.status] = (ended[info.status] ?? 0) + 1;
}
await runtime.close();
await store.close();
process.stdout.write(`${JSON.stringify(ended)}\n`);
process.exit(0);
