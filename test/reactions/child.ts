import { createWorker } from '../../src/runtime/index.js';
import { openStore } from '../../src/store/open.js';
import { CallLedger } from '../concurrency/calls.js';
import { reactions, workflows } from './world.js';

// One worker process of the reactions torture. Given n > 0, it dies (SIGKILL,
// by its own hand) right before its n-th store of a reaction's position, that
// is, after acting on a page and before the position says so.
// Usage: child.mjs <store url> <ledger file> <safe|unsafe> <n, 0 for never> <events>

const [url, ledgerFile, mode, nth, events] = process.argv.slice(2) as [string, string, 'safe' | 'unsafe', string, string];
// 'normal' survives a process's death, which is all this torture deals out (on SQLite; PostgreSQL commits as ever).
const store = await openStore(url, { durability: 'normal' });
const dieAt = Number(nth);
let stores = 0;
const checkpoint = store.checkpoint.bind(store);
store.checkpoint = async (consumer, position) => {
  if (consumer.startsWith('reaction:') && ++stores === dieAt) process.kill(process.pid, 'SIGKILL');
  return checkpoint(consumer, position);
};
const ledger = new CallLedger(ledgerFile);
const worker = createWorker({
  store,
  workflows: workflows(ledger),
  reactions: reactions(mode, Number(events)),
  concurrency: 16,
  leaseMs: 1_000,
  pollMs: 50,
  onEvent: (e) => {
    if (e.type === 'error' || (e.type === 'reaction' && (e.event.type === 'parked' || e.event.type === 'error')))
      process.stderr.write(`${JSON.stringify(e)}\n`);
  },
});
// Before the worker starts: a SIGTERM that finds no handler (the process still loading) ends a process that has done nothing.
process.on('SIGTERM', () => {
  void worker.stop({ graceMs: 1_000 }).then(async () => {
    await store.close();
    ledger.close();
    process.exit(0);
  });
});
await worker.start();
