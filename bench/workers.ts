import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { createRuntime } from '../src/runtime/index.js';
import { openRunQueue } from '../src/runtime/run-queue.js';
import { openStore } from '../src/store/open.js';
import { benchWorkflow } from '../test/fixtures/worker-child.js';
import { measure } from './lib.js';

const SECTION = 'workers on postgres';
const ROOT = join(import.meta.dirname, '..');
// The worker processes run what this file runs: the compiled JavaScript under `npm run bench`, the TypeScript under tsx.
const CHILD = import.meta.filename.endsWith('.ts')
  ? ['--import', 'tsx', 'test/fixtures/worker-child.ts']
  : ['test/fixtures/worker-child.js'];
const CONCURRENCY = 8;

/**
 * Throughput of 1, 2 and 4 worker processes sharing one PostgreSQL schema,
 * each driving short runs (three steps, so eight appends and a claim and a
 * release per run). Every run is queued before the clock starts; the workers
 * are started and connected, then told to go together; the clock stops when
 * the queue reports every run done. Compared with one worker process.
 */
export async function benchWorkers(url: string, scale: number): Promise<void> {
  const runs = 400 * scale;
  const admin = new pg.Pool({ connectionString: url, max: 2 });
  // An idle connection dropped by the server (it is stopped right after this section) must not crash the bench.
  admin.on('error', () => {});
  try {
    for (const n of [1, 2, 4]) {
      const schema = `bench_workers_${n}_${Date.now().toString(36)}`;
      const store = await openStore(url, { schema, poolSize: 16 });
      const queue = await openRunQueue(store);
      const children: ChildProcess[] = [];
      try {
        const client = createRuntime({ store, workflows: [benchWorkflow], queue });
        for (let i = 0; i < runs; i += 16) {
          await Promise.all(
            Array.from({ length: Math.min(16, runs - i) }, (_, k) =>
              client.start(benchWorkflow, { n: i + k }, { runId: `b${i + k}`, detach: true }),
            ),
          );
        }
        const ready: Promise<void>[] = [];
        for (let w = 0; w < n; w++) {
          const child = spawn(process.execPath, CHILD, {
            cwd: ROOT,
            env: {
              ...process.env,
              DATABASE_URL: url,
              REWIND_SCHEMA: schema,
              WORKER_ID: `bench${w}`,
              WORKER_CONCURRENCY: String(CONCURRENCY),
              WORKER_LEASE_MS: '30000',
              WORKER_POLL_MS: '500',
              WORKER_GATE: '1',
            },
            stdio: ['pipe', 'pipe', 'inherit'],
          });
          children.push(child);
          ready.push(
            new Promise((resolve, reject) => {
              child.once('exit', (code) => reject(new Error(`worker exited with ${code} before it was ready`)));
              child.stdout?.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
            }),
          );
        }
        await Promise.all(ready);
        await measure(
          SECTION,
          `${n} worker process${n > 1 ? 'es' : ''} × ${CONCURRENCY} runs each`,
          runs,
          async () => {
            for (const child of children) child.stdin?.write('go\n');
            for (;;) {
              const { rows } = await admin.query<{ done: string }>(
                `SELECT count(*) AS done FROM "${schema}".run_queue WHERE state = 'done'`,
              );
              if (Number(rows[0]?.done) >= runs) break;
              await new Promise((r) => setTimeout(r, 20));
            }
          },
          { unit: 'runs/s', ...(n > 1 ? { baseline: `1 worker process × ${CONCURRENCY} runs each` } : {}) },
        );
      } finally {
        await Promise.all(
          children.map(
            (child) =>
              new Promise<void>((resolve) => {
                if (child.exitCode !== null) return resolve();
                child.once('exit', () => resolve());
                child.kill('SIGTERM');
              }),
          ),
        );
        await queue.close();
        await store.close();
        await admin.query(`DROP SCHEMA "${schema}" CASCADE`);
      }
    }
  } finally {
    await admin.end();
  }
}
