import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { generateKeyPair } from '../events/signing.js';
import { startSealing } from '../store/audit/sealer.js';
import { openStore } from '../store/open.js';
import type { EventStore } from '../store/types.js';
import { measure, measureInTurns, note, record } from './lib.js';
import { batch, EVENTS_PER_APPEND, payload } from './workload.js';

const SECTION = 'audit';
/** Events per stream in the big logs: a run of an agent. */
const EVENTS_PER_STREAM = 100;

/**
 * What the audit trail costs (issue 16): appends with a sealer running
 * beside them against the same appends without; verification of a large log
 * (SQLite: 1,000,000 events at scale 1; PostgreSQL: 200,000), sealing it from
 * scratch, digesting it and proving one event of it.
 */
export async function benchAudit(scale: number, databaseUrl: () => Promise<string>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-bench-audit-'));
  const keys = generateKeyPair();
  try {
    await appendsWithSeals(dir, keys.privateKey, scale);
    const sqlite = await openStore(`sqlite:${join(dir, 'big.db')}`, { durability: 'normal' });
    await bigLog(sqlite, 'SQLite', Math.round(1_000_000 * scale), keys);
    await sqlite.close();
    const url = await databaseUrl();
    const schema = `bench_audit_${Date.now().toString(36)}`;
    const postgres = await openStore(url, { schema });
    // As a log that has been there a while: vacuumed, so the first read does not pay for setting hint bits.
    const settle = async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`VACUUM ANALYZE "${schema}".events`);
      await client.end();
    };
    await bigLog(postgres, 'PostgreSQL', Math.round(200_000 * scale), keys, settle);
    await postgres.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Agent-style appends awaited one by one (fsync each), with and without a sealer in the same process, in turns. */
async function appendsWithSeals(dir: string, signingKey: string, scale: number): Promise<void> {
  const appends = Math.max(50, Math.round(400 * scale));
  const every = 1000;
  const plain = await openStore(`sqlite:${join(dir, 'plain.db')}`);
  const sealed = await openStore(`sqlite:${join(dir, 'sealed.db')}`);
  let seals = 0;
  const sealing = startSealing(sealed, { signingKey, everyEvents: every, everyMs: 60_000, onSeal: () => seals++ });
  const round = (store: EventStore) => async (r: number) => {
    for (let a = 0; a < appends; a++) await store.append(`agent-${r}-${a % 10}`, batch(r, a));
  };
  await measureInTurns(SECTION, 'appends/s', 5, [
    { name: 'SQLite appends one by one', ops: appends, run: round(plain) },
    { name: `the same, sealed every ${every} events`, ops: appends, run: round(sealed), baseline: 'SQLite appends one by one' },
  ]);
  await sealing.stop();
  const written = await sealed.headPosition();
  note(
    SECTION,
    `${appends} appends of ${EVENTS_PER_APPEND} events a round, WAL with synchronous=FULL; the sealer, in this process, looks at the head ` +
      `four times a second and wrote ${seals} seals over ${written} positions (one per ${Math.round(written / Math.max(seals, 1))})`,
  );
  await plain.close();
  await sealed.close();
}

async function bigLog(
  store: EventStore,
  name: string,
  events: number,
  keys: ReturnType<typeof generateKeyPair>,
  settle?: () => Promise<void>,
): Promise<void> {
  const streams = Math.max(1, Math.round(events / EVENTS_PER_STREAM));
  const started = performance.now();
  for (let s = 0; s < streams; s++) {
    const run = Array.from({ length: EVENTS_PER_STREAM }, (_, i) => ({ type: 'ToolCalled', data: payload(s, i) }));
    await store.append(`run-${s}`, run);
  }
  process.stderr.write(
    `  ${SECTION} · ${name}: wrote ${(streams * EVENTS_PER_STREAM).toLocaleString('en-US')} events in ${streams.toLocaleString('en-US')} streams in ${((performance.now() - started) / 1000).toFixed(0)} s\n`,
  );
  const total = streams * EVENTS_PER_STREAM;
  await settle?.();

  let seals = 0;
  await measure(
    SECTION,
    `${name}: seal an unsealed log of ${total.toLocaleString('en-US')} events`,
    total,
    async () => {
      while (await store.seal({ signingKey: keys.privateKey })) seals++;
    },
    { unit: 'events/s' },
  );
  note(SECTION, `${name}: sealing the log from scratch took ${seals} seals (each lists at most 200 KiB of stream heads)`);

  let shown = 0;
  const verify = await measure(
    SECTION,
    `${name}: verify ${total.toLocaleString('en-US')} events (chains, rows, seals by key)`,
    total,
    async () => {
      const report = await store.verify({
        publicKeys: [keys.publicKey],
        onProgress: (p) => {
          // What the CLI draws as a bar, as lines.
          if (p.events >= shown + total / 10) {
            shown = p.events;
            process.stderr.write(`    ${Math.round((100 * p.position) / p.head)}% (${p.events.toLocaleString('en-US')} events)\n`);
          }
        },
      });
      if (!report.ok) throw new Error(`the bench log does not verify: ${report.problems[0]?.message}`);
    },
    { unit: 'events/s' },
  );
  await measure(
    SECTION,
    `${name}: digest ${total.toLocaleString('en-US')} events (verifies, then signs)`,
    total,
    async () => {
      const d = await store.digest({ signingKey: keys.privateKey });
      note(
        SECTION,
        `${name}: the digest of ${streams.toLocaleString('en-US')} streams is ${JSON.stringify(d).length.toLocaleString('en-US')} bytes of JSON`,
      );
    },
    { unit: 'events/s', baseline: verify.name },
  );
  const middle = (await store.read(`run-${Math.floor(streams / 2)}`, { limit: 1 }))[0];
  if (middle) {
    const started = performance.now();
    const proof = await store.prove(middle.id);
    record({
      section: SECTION,
      name: `${name}: prove one event (reads the log up to its seal)`,
      ops: 1,
      seconds: (performance.now() - started) / 1000,
      unit: 'ms',
      kind: 'latency',
    });
    note(SECTION, `${name}: an inclusion proof holds ${proof.path.length} hashes, ${JSON.stringify(proof).length} bytes with the event`);
  }
}
