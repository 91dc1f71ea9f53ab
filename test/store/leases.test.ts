import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { LeaseLostError, ValidationError } from '../../src/events/errors.js';
import { openStore } from '../../src/store/open.js';
import type { EventStore } from '../../src/store/types.js';
import { databaseUrl, uniqueSchema } from '../support/postgres.js';
import { tempDir } from '../support/temp.js';

/** Two handles on one log, as two processes would have (memory: one store, two names). */
type Pair = () => Promise<[EventStore, EventStore]>;

const backends: [string, Pair][] = [
  [
    'memory',
    async () => {
      const store = await openStore('memory:');
      return [store, store];
    },
  ],
  [
    'sqlite',
    async () => {
      const file = join(tempDir('rewind-leases-'), 'log.db');
      return [await openStore(`sqlite:${file}`), await openStore(`sqlite:${file}`)];
    },
  ],
  [
    'postgres',
    async () => {
      const schema = uniqueSchema();
      return [await openStore(databaseUrl(), { schema }), await openStore(databaseUrl(), { schema })];
    },
  ],
];

const event = { type: 'Noted', data: { n: 1 } };

describe.each(backends)('stream leases on %s', (_name, pair) => {
  let open: EventStore[] = [];
  const stores = async () => {
    const both = await pair();
    open.push(...both);
    return both;
  };
  afterEach(async () => {
    for (const s of new Set(open)) await s.close().catch(() => {});
    open = [];
  });

  it('given a free stream, when two owners acquire it, then the first holds it and the second is told who does', async () => {
    const [a, b] = await stores();
    const first = await a.acquireLease('run-1', 'owner-a', 5_000);
    expect(first).toMatchObject({ acquired: true, lease: { streamId: 'run-1', owner: 'owner-a', epoch: 1 } });
    const second = await b.acquireLease('run-1', 'owner-b', 5_000);
    expect(second).toMatchObject({ acquired: false, holder: { streamId: 'run-1', owner: 'owner-a', epoch: 1 } });
    expect(await b.leaseOf('run-1')).toMatchObject({ owner: 'owner-a', epoch: 1 });
    expect(await b.leaseOf('run-2')).toBeUndefined();
  });

  it('given a released lease, when another owner acquires it, then it gets the next epoch', async () => {
    const [a, b] = await stores();
    await a.acquireLease('run-1', 'owner-a', 5_000);
    await a.releaseLease('run-1', 'owner-a', 1);
    expect(await a.leaseOf('run-1')).toMatchObject({ owner: 'owner-a', epoch: 1, until: 0 });
    expect(await b.acquireLease('run-1', 'owner-b', 5_000)).toMatchObject({ acquired: true, lease: { owner: 'owner-b', epoch: 2 } });
    // A release naming an old epoch leaves the new holder's lease alone.
    await a.releaseLease('run-1', 'owner-a', 1);
    expect(await a.leaseOf('run-1')).toMatchObject({ owner: 'owner-b', epoch: 2 });
  });

  it('given a lease its owner stopped renewing, when it lapses, then another owner takes it and the old one can renew nothing', async () => {
    const [a, b] = await stores();
    await a.acquireLease('run-1', 'owner-a', 50);
    expect(await a.renewLeases('owner-a', ['run-1'], 50)).toEqual(['run-1']);
    await sleep(120);
    expect(await b.acquireLease('run-1', 'owner-b', 5_000)).toMatchObject({ acquired: true, lease: { owner: 'owner-b', epoch: 2 } });
    expect(await a.renewLeases('owner-a', ['run-1'], 5_000)).toEqual([]);
  });

  it('given a lapsed lease nobody took, when its owner renews, then it still holds it at the same epoch', async () => {
    const [a] = await stores();
    await a.acquireLease('run-1', 'owner-a', 20);
    await sleep(60);
    expect(await a.renewLeases('owner-a', ['run-1', 'run-9'], 5_000)).toEqual(['run-1']);
    expect(await a.leaseOf('run-1')).toMatchObject({ owner: 'owner-a', epoch: 1 });
  });

  it('a fenced append is written while its writer holds the lease, and refused with LeaseLostError (writing nothing) once another took it', async () => {
    const [a, b] = await stores();
    const held = await a.acquireLease('run-1', 'owner-a', 30);
    if (!held.acquired) throw new Error('not acquired');
    const fence = { owner: 'owner-a', epoch: held.lease.epoch };
    await a.append('run-1', [event], { expectedVersion: 'no_stream', fence });
    await sleep(80);
    // Lapsed but not taken: nobody else can have written, so the holder's append still goes through.
    await a.append('run-1', [event], { expectedVersion: 1, fence });
    await b.acquireLease('run-1', 'owner-b', 5_000);
    const refused = await a.append('run-1', [event], { expectedVersion: 2, fence }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(LeaseLostError);
    expect(refused).toMatchObject({ code: 'LEASE_LOST', streamId: 'run-1', owner: 'owner-a', epoch: 1 });
    expect(await b.streamVersion('run-1')).toBe(2);
    await b.append('run-1', [event], { expectedVersion: 2, fence: { owner: 'owner-b', epoch: 2 } });
    expect(await b.streamVersion('run-1')).toBe(3);
  });

  it('a fenced append refused inside appendMany writes none of the streams', async () => {
    const [a] = await stores();
    await a.acquireLease('run-1', 'owner-a', 5_000);
    const refused = await a
      .appendMany([
        { streamId: 'inbox-1', events: [event] },
        { streamId: 'run-1', events: [event], fence: { owner: 'owner-a', epoch: 7 } },
      ])
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(LeaseLostError);
    expect(await a.streamVersion('inbox-1')).toBe(0);
    expect(await a.streamVersion('run-1')).toBe(0);
  });

  it('after a release, the old holder’s fenced appends are refused', async () => {
    const [a] = await stores();
    await a.acquireLease('run-1', 'owner-a', 5_000);
    await a.releaseLease('run-1', 'owner-a', 1);
    await expect(a.append('run-1', [event], { fence: { owner: 'owner-a', epoch: 1 } })).rejects.toBeInstanceOf(LeaseLostError);
  });

  it('bad arguments are a ValidationError that names each, and nothing is written', async () => {
    const [a] = await stores();
    await expect(a.acquireLease('', 'o', 0)).rejects.toThrow(
      new ValidationError('cannot acquire a lease', [
        'streamId must be a non-empty string',
        'leaseMs must be a whole number of milliseconds from 1 to 86,400,000',
      ]),
    );
    await expect(a.append('run-1', [event], { fence: { owner: 'o', epoch: 0 } })).rejects.toThrow(
      new ValidationError('nothing was appended', [
        'fence must be { owner: string, epoch: positive integer } (the lease the writer holds)',
      ]),
    );
    expect(await a.streamVersion('run-1')).toBe(0);
  });

  it('the change counter moves when the other handle appends', async () => {
    const [a, b] = await stores();
    const before = await a.changeCounter();
    await b.append('elsewhere', [event]);
    const deadline = Date.now() + 2_000;
    while ((await a.changeCounter()) === before && Date.now() < deadline) await sleep(10);
    expect(await a.changeCounter()).not.toBe(before);
  });
});

describe('stream leases on postgres: a dead holder', () => {
  it('given a holder whose database session ended, when another owner acquires, then it takes the lease at once, before its expiry', async () => {
    const schema = uniqueSchema();
    const a = await openStore(databaseUrl(), { schema });
    const b = await openStore(databaseUrl(), { schema });
    try {
      expect(await a.acquireLease('run-1', 'owner-a', 60_000)).toMatchObject({ acquired: true });
      expect(await b.acquireLease('run-1', 'owner-b', 60_000)).toMatchObject({ acquired: false });
      await a.close();
      expect(await b.acquireLease('run-1', 'owner-b', 60_000)).toMatchObject({ acquired: true, lease: { owner: 'owner-b', epoch: 2 } });
    } finally {
      await b.close();
    }
  });
});

describe('stream leases on sqlite: a dead holder', () => {
  it('given a holder whose process has exited, when another owner acquires, then it takes the lease at once, before its expiry', async () => {
    const file = join(tempDir('rewind-leases-'), 'log.db');
    const dist = join(import.meta.dirname, '../../dist/src/index.js');
    // Another process takes the lease for a minute, and dies without a word.
    const child = spawnSync(process.execPath, [
      '--input-type=module',
      '-e',
      `const { openStore } = await import(${JSON.stringify(dist)});
       const store = await openStore(${JSON.stringify(`sqlite:${file}`)});
       await store.acquireLease('run-1', 'gone', 60000);
       process.kill(process.pid, 'SIGKILL');`,
    ]);
    expect(child.signal, child.stderr.toString()).toBe('SIGKILL');
    const store = await openStore(`sqlite:${file}`);
    try {
      expect(await store.leaseOf('run-1')).toMatchObject({ owner: 'gone', epoch: 1 });
      expect(await store.acquireLease('run-1', 'next', 60_000)).toMatchObject({ acquired: true, lease: { owner: 'next', epoch: 2 } });
    } finally {
      await store.close();
    }
  });
});
