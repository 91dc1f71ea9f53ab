import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunnableConfig } from '@langchain/core/runnables';
import { Annotation, END, MemorySaver, START, StateGraph } from '@langchain/langgraph';
import type { BaseCheckpointSaver, ChannelVersions, Checkpoint, CheckpointMetadata, PendingWrite } from '@langchain/langgraph-checkpoint';
import { PostgresSaver } from '@langchain/langgraph-checkpoint-postgres';
import { SqliteSaver } from '@langchain/langgraph-checkpoint-sqlite';
import pg from 'pg';
import { openStore } from '../src/store/open.js';
import { RewindCheckpointSaver } from '../src/surfaces/langgraph/index.js';
import { figures, fmt, measure, measureInTurns } from './lib.js';

const SECTION = 'langgraph saver';
const THREAD = 'bench-thread';

type Call =
  | { kind: 'put'; config: RunnableConfig; checkpoint: Checkpoint; metadata: CheckpointMetadata; newVersions: ChannelVersions }
  | { kind: 'writes'; config: RunnableConfig; writes: PendingWrite[]; taskId: string; taskPath?: string };

/** Only what a saver reads from a config (the loop's config also carries callbacks). */
function plain(config: RunnableConfig): RunnableConfig {
  const { thread_id, checkpoint_ns, checkpoint_id } = config.configurable ?? {};
  return { configurable: { thread_id, checkpoint_ns, checkpoint_id } };
}

/** Every call a real graph makes to its checkpointer, so each saver under test gets exactly the same ones. */
class RecordingSaver extends MemorySaver {
  readonly calls: Call[] = [];
  // MemorySaver declares put without newVersions; LangGraph passes it all the same.
  override async put(config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, ...rest: unknown[]) {
    const newVersions = (rest[0] ?? {}) as ChannelVersions;
    this.calls.push(structuredClone({ kind: 'put', config: plain(config), checkpoint, metadata, newVersions }));
    return super.put(config, checkpoint, metadata);
  }
  override async putWrites(config: RunnableConfig, writes: PendingWrite[], taskId: string, taskPath?: string) {
    this.calls.push(structuredClone({ kind: 'writes', config: plain(config), writes, taskId, taskPath }));
    return super.putWrites(config, writes, taskId, taskPath);
  }
}

/**
 * An agent-like loop: `think` and `act` alternate, each appending a message
 * (~300 bytes) to a growing conversation, `act` also rewriting a small
 * scratchpad; a few hundred super-steps on one thread.
 */
function agentGraph(steps: number, checkpointer: BaseCheckpointSaver) {
  interface Message {
    role: string;
    content: string;
    step: number;
  }
  const State = Annotation.Root({
    messages: Annotation<Message[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
    scratchpad: Annotation<{ plan: string; step: number }>({ reducer: (_a, b) => b, default: () => ({ plan: '', step: 0 }) }),
    step: Annotation<number>({ reducer: (_a, b) => b, default: () => 0 }),
  });
  const text = (n: number) => `step ${n}: ${'the agent considers the tool output and decides what to do next. '.repeat(4)}`;
  return new StateGraph(State)
    .addNode('think', (s) => ({ step: s.step + 1, messages: [{ role: 'assistant', content: text(s.step + 1), step: s.step + 1 }] }))
    .addNode('act', (s) => ({
      step: s.step + 1,
      messages: [{ role: 'tool', content: text(s.step + 1), step: s.step + 1 }],
      scratchpad: { plan: `plan after ${s.step + 1}`, step: s.step + 1 },
    }))
    .addEdge(START, 'think')
    .addConditionalEdges('think', (s) => (s.step >= steps ? END : 'act'))
    .addConditionalEdges('act', (s) => (s.step >= steps ? END : 'think'))
    .compile({ checkpointer });
}

async function runGraph(steps: number, checkpointer: BaseCheckpointSaver, threadId: string): Promise<void> {
  await agentGraph(steps, checkpointer).invoke(
    { messages: [{ role: 'user', content: 'plan a trip to Lisbon', step: 0 }] },
    { configurable: { thread_id: threadId }, recursionLimit: steps + 10 },
  );
}

/** The workload: agentGraph run once, its checkpointer calls recorded. */
export async function recordWorkload(steps: number): Promise<Call[]> {
  const recorder = new RecordingSaver();
  await runGraph(steps, recorder, THREAD);
  return recorder.calls;
}

export async function replay(saver: BaseCheckpointSaver, calls: Call[], threadId = THREAD): Promise<void> {
  const on = (config: RunnableConfig) => (threadId === THREAD ? config : { configurable: { ...config.configurable, thread_id: threadId } });
  for (const c of calls) {
    if (c.kind === 'put') await saver.put(on(c.config), c.checkpoint, c.metadata, c.newVersions);
    else await saver.putWrites(on(c.config), c.writes, c.taskId, c.taskPath);
  }
}

function bytesOnDisk(file: string): number {
  let total = 0;
  for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) if (existsSync(f)) total += statSync(f).size;
  return total;
}

interface Contender {
  name: string;
  saver: BaseCheckpointSaver;
  close: () => Promise<void>;
  /** A new saver instance on the same data (cold caches). */
  fresh: () => BaseCheckpointSaver;
  file?: string;
}

interface Comparison {
  theirs: Contender;
  ours: Contender;
  /** Measured for put only: Rewind's default durability, stricter than the official saver's. */
  strict?: Contender;
}

/**
 * RewindCheckpointSaver (SQLite, and PostgreSQL when DATABASE_URL is set) side
 * by side with the official SqliteSaver / PostgresSaver on the same recorded
 * graph workload: put (with its pending writes), getTuple, list, opening a
 * thread with a new saver, and the SQLite file size; plus the graph itself
 * run on each (LangGraph's own work included, default async durability).
 *
 * The official SqliteSaver runs WAL with synchronous=NORMAL (better-sqlite3's
 * WAL default): it survives a process crash, not a power loss. The main
 * comparison opens Rewind's store with the same guarantee (durability
 * 'normal'); Rewind's default ('full', fsync per commit) is shown for put too.
 */
export async function benchLangGraph(scale: number): Promise<void> {
  const steps = Math.max(20, Math.round(300 * scale));
  const calls = await recordWorkload(steps);
  const puts = calls.filter((c) => c.kind === 'put') as Extract<Call, { kind: 'put' }>[];
  const ids = puts.map((c) => c.checkpoint.id);
  const dir = mkdtempSync(join(tmpdir(), 'rewind-bench-lg-'));
  process.stderr.write(`  ${SECTION}: ${steps} steps, ${puts.length} checkpoints, ${calls.length - puts.length} putWrites calls\n`);

  const comparisons: Comparison[] = [];
  try {
    comparisons.push({
      theirs: officialSqlite(join(dir, 'official.db')),
      ours: await rewindSqlite('rewind saver (sqlite, synchronous=NORMAL)', join(dir, 'rewind.db'), 'normal'),
      strict: await rewindSqlite('rewind saver (sqlite, synchronous=FULL)', join(dir, 'rewind-full.db'), 'full'),
    });
    const url = process.env.DATABASE_URL;
    if (url) comparisons.push(await postgresPair(url));

    const thread = { configurable: { thread_id: THREAD, checkpoint_ns: '' } };
    const byId = (id: string) => ({ configurable: { thread_id: THREAD, checkpoint_ns: '', checkpoint_id: id } });
    const lists = Math.max(3, Math.round(10 * scale));
    for (const { theirs, ours, strict } of comparisons) {
      const vs = (c: Contender, what: string) => (c === theirs ? undefined : `${theirs.name}: ${what}`);
      const rounds = Math.max(3, Math.round(5 * scale));
      await measureInTurns(
        SECTION,
        'checkpoints/s',
        rounds,
        [theirs, ours, ...(strict ? [strict] : [])].map((c) => ({
          name: `${c.name}: put + putWrites`,
          ops: puts.length,
          run: (round) => replay(c.saver, calls, `put-${round}`),
          baseline: vs(c, 'put + putWrites'),
        })),
        3,
      );
      // A server with many conversations: several threads put at once, each call still awaited in turn.
      const parallel = 4;
      await measureInTurns(
        SECTION,
        'checkpoints/s',
        Math.max(3, Math.round(3 * scale)),
        [theirs, ours].map((c) => ({
          name: `${c.name}: put + putWrites, ${parallel} threads at once`,
          ops: parallel * puts.length,
          run: async (round) => {
            await Promise.all(Array.from({ length: parallel }, (_, t) => replay(c.saver, calls, `par-${round}-${t}`)));
          },
          baseline: vs(c, `put + putWrites, ${parallel} threads at once`),
        })),
      );
      // The thread the reads below read.
      for (const c of [theirs, ours]) await replay(c.saver, calls);
      await measureInTurns(
        SECTION,
        'steps/s',
        rounds,
        [theirs, ours].map((c) => ({
          name: `${c.name}: whole graph run`,
          ops: steps,
          run: (round) => runGraph(steps, c.saver, `graph-${round}`),
          baseline: vs(c, 'whole graph run'),
        })),
      );
      for (const c of [theirs, ours]) {
        await measure(
          SECTION,
          `${c.name}: getTuple by id`,
          ids.length,
          async () => {
            for (const id of ids) await c.saver.getTuple(byId(id));
          },
          { unit: 'tuples/s', baseline: vs(c, 'getTuple by id') },
        );
        await measure(
          SECTION,
          `${c.name}: getTuple latest`,
          ids.length,
          async () => {
            for (let i = 0; i < ids.length; i++) await c.saver.getTuple(thread);
          },
          { unit: 'tuples/s', baseline: vs(c, 'getTuple latest') },
        );
        await measure(
          SECTION,
          `${c.name}: list whole thread`,
          ids.length * lists,
          async () => {
            for (let i = 0; i < lists; i++) for await (const _ of c.saver.list(thread)) void _;
          },
          { unit: 'tuples/s', baseline: vs(c, 'list whole thread') },
        );
      }
      // A saver opening the thread (a new process, a serverless call): its first getTuple.
      const opens = 20;
      await measureInTurns(
        SECTION,
        'opens/s',
        rounds,
        [theirs, ours].map((c) => ({
          name: `${c.name}: first getTuple by a new saver`,
          ops: opens,
          run: async () => {
            for (let i = 0; i < opens; i++) await c.fresh().getTuple(thread);
          },
          baseline: vs(c, 'first getTuple by a new saver'),
        })),
      );
      for (const c of [strict, ours, theirs]) await c?.close();
      for (const c of [theirs, ours]) {
        if (!c.file) continue;
        const bytes = bytesOnDisk(c.file);
        // A size, not a rate: one "op" per byte over one second, so the ratio column compares sizes.
        figures.push({
          section: SECTION,
          name: `${c.name}: bytes on disk`,
          ops: bytes,
          seconds: 1,
          unit: 'bytes',
          baseline: vs(c, 'bytes on disk'),
        });
        process.stderr.write(`  ${SECTION} · ${c.name}: ${fmt(bytes)} bytes on disk\n`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function officialSqlite(file: string): Contender {
  const saver = SqliteSaver.fromConnString(file);
  return {
    name: 'official SqliteSaver',
    saver,
    close: async () => void saver.db.close(),
    fresh: () => SqliteSaver.fromConnString(file),
    file,
  };
}

async function rewindSqlite(name: string, file: string, durability: 'normal' | 'full'): Promise<Contender> {
  const store = await openStore(`sqlite:${file}`, { durability });
  return { name, saver: new RewindCheckpointSaver(store), close: () => store.close(), fresh: () => new RewindCheckpointSaver(store), file };
}

async function postgresPair(url: string): Promise<Comparison> {
  const schema = `lgbench_${Date.now().toString(36)}`;
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  const official = new PostgresSaver(pool, undefined, { schema });
  await official.setup();
  const store = await openStore(url, { schema: `${schema}_rewind`, poolSize: 4 });
  return {
    theirs: {
      name: 'official PostgresSaver',
      saver: official,
      fresh: () => new PostgresSaver(pool, undefined, { schema }),
      close: async () => {
        await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await pool.query(`DROP SCHEMA IF EXISTS ${schema}_rewind CASCADE`);
        await pool.end();
      },
    },
    ours: {
      name: 'rewind saver (postgres)',
      saver: new RewindCheckpointSaver(store),
      fresh: () => new RewindCheckpointSaver(store),
      close: () => store.close(),
    },
  };
}
