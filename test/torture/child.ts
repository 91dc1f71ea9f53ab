// One process of a crash test: plays a scenario's operator on a store until
// the scenario is over, or kills itself with SIGKILL at one boundary.
// Usage: child <store url> <dir> <scenario> <inline|declared> <run id> <kill>
//   dir: the scenario's folder, holding the provider's ledger shared by its runs.
//   kill: 'none' (count the boundaries), a boundary number, or 'after:<ms>'.
//
// The boundaries are the instants just before and just after every append
// the runtime makes. "Just before append i" is counted only when the provider
// changed since the boundary before it: otherwise the log and the world are
// exactly as "just after append i-1" left them, and a kill there is the same
// crash. A kill is this process sending itself SIGKILL: it dies on the spot,
// between two instructions, as it would under an outside kill.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openStore } from '../../src/store/open.js';
import type { EventStore } from '../../src/store/types.js';
import { operate } from './harness.js';
import { Ledger } from './ledger.js';
import { scenario } from './scenarios.js';

const [url, dir, name, hooks, runId, kill] = process.argv.slice(2) as [string, string, string, string, string, string];
const ledger = new Ledger(join(dir, 'ledger.db'));
const store = await openStore(url, { durability: 'normal' });
let boundary = 0;
let seen = 0;
/** The boundary just before the first rollback request: where a rollback's own boundaries begin. */
let protocol: number | undefined;
const target = /^\d+$/.test(kill) ? Number(kill) : undefined;
const at = () => {
  boundary++;
  seen = ledger.writes;
  if (boundary === target) process.kill(process.pid, 'SIGKILL');
};
const killing: EventStore = new Proxy(store, {
  get(target, prop) {
    if (prop === 'append' || prop === 'appendMany') {
      const original = Reflect.get(target, prop, target) as (...args: unknown[]) => Promise<unknown>;
      return async (...args: unknown[]) => {
        if (ledger.writes !== seen) at();
        if (protocol === undefined && JSON.stringify(args).includes('"RollbackRequested"')) protocol = boundary;
        const result = await original.apply(target, args);
        at();
        return result;
      };
    }
    const value = Reflect.get(target, prop, target);
    return typeof value === 'function' ? value.bind(target) : value;
  },
});
if (kill.startsWith('after:')) setTimeout(() => process.kill(process.pid, 'SIGKILL'), Number(kill.slice(6)));
process.stdout.write('ready\n');
const world = { ledger, dir: join(dir, runId) };
mkdirSync(world.dir, { recursive: true });
await operate(killing, world, scenario(name, hooks), runId);
await store.close();
ledger.close();
process.stdout.write(`boundaries ${boundary} protocol ${protocol ?? boundary}\n`);
process.exit(0);
