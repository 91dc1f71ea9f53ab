import type { EventStore } from '../store/types.js';
import { record } from './lib.js';
/** The workloads of issue 2's benchmark, shared by the SQLite and PostgreSQL sections. */

/** An agent's tool call: about 200 bytes of JSON. */
export function payload(stream: number, i: number): { tool: string; args: { query: string; limit: number }; result: string; n: number } {
  return {
    tool: 'web.search',
    args: { query: `hotels in Lisbon near the river, stream ${stream}`, limit: 10 },
    result: `3 results: Casa do Rio (4.6), Hotel Tejo (4.4), Alfama Suites (4.1); call ${i}`.padEnd(112, '.'),
    n: i,
  };
}

export const EVENTS_PER_APPEND = 10;
export const APPENDS_PER_STREAM = 10;
export const FOLD_EVENTS = 100_000;
/** The snapshot sits this many events behind the head of the folded stream. */
export const SNAPSHOT_LAG = 100;

export function batch(stream: number, append: number): { type: string; data: ReturnType<typeof payload> }[] {
  return Array.from({ length: EVENTS_PER_APPEND }, (_, k) => ({
    type: 'ToolCalled',
    data: payload(stream, append * EVENTS_PER_APPEND + k),
  }));
}

/** The fold: what a reducer over tool calls would keep. */
export interface FoldState {
  calls: number;
  sum: number;
}
export const initialFold = (): FoldState => ({ calls: 0, sum: 0 });
export function evolve(state: FoldState, data: unknown): FoldState {
  return { calls: state.calls + 1, sum: state.sum + ((data as { n?: number }).n ?? 0) };
}

/** Runs `work(i)` for i in [0, count) with at most `width` in flight. */
export async function pool(count: number, width: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, count) }, async () => {
      for (let i = next++; i < count; i = next++) await work(i);
    }),
  );
}

/** Sequentially awaited appends of every stream: stream after stream, each append awaited. */
export async function sequential(streams: number, append: (stream: number, a: number) => Promise<void>): Promise<void> {
  for (let s = 0; s < streams; s++) for (let a = 0; a < APPENDS_PER_STREAM; a++) await append(s, a);
}

/**
 * `width` agents at once, each taking the next stream and appending to it
 * APPENDS_PER_STREAM times, each append awaited: `width` appends in flight.
 * An append that fails ends its stream (the next would expect the wrong version).
 */
export async function concurrent(
  streams: number,
  width: number,
  append: (stream: number, a: number) => Promise<void>,
): Promise<{ ok: number; failed: number; errors: Map<string, number> }> {
  let ok = 0;
  let failed = 0;
  const errors = new Map<string, number>();
  await pool(streams, width, async (s) => {
    for (let a = 0; a < APPENDS_PER_STREAM; a++) {
      try {
        await append(s, a);
        ok++;
      } catch (error) {
        failed += APPENDS_PER_STREAM - a;
        const key = `${(error as { code?: string }).code ?? (error as Error).name}: ${String((error as Error).message).slice(0, 80)}`;
        errors.set(key, (errors.get(key) ?? 0) + 1);
        return;
      }
    }
  });
  return { ok, failed, errors };
}

export function describeErrors(errors: Map<string, number>): string {
  return [...errors].map(([k, n]) => `${n}× ${k}`).join('; ');
}

/** Median of `runs` timings of fn, in seconds. */
export async function medianSeconds(runs: number, fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] as number;
}

/** Imports an optional (dev) dependency, or says how to get it. */
export async function optional<T>(specifier: string): Promise<T | Error> {
  try {
    return (await import(specifier)) as T;
  } catch (error) {
    return new Error(
      `${specifier} is not installed here (${(error as Error).message.split('\n')[0]}); npm run bench in a source checkout installs it (bench/package.json)`,
    );
  }
}

/**
 * Workload (4)'s figures, on a stream of FOLD_EVENTS already written to all
 * stores with a snapshot SNAPSHOT_LAG behind its end: a whole fold, then a fold
 * from the snapshot, for the raw driver (the baseline), Rewind and Emmett.
 */
export async function foldFigures(options: {
  section: string;
  /** e.g. 'raw pg'; names the baseline figures. */
  driver: string;
  foldId: string;
  store: EventStore;
  rawFold: (fromVersion: number, state: FoldState) => FoldState | Promise<FoldState>;
  rawSnapshot: () => { version: number; state: FoldState } | Promise<{ version: number; state: FoldState }>;
  /** Emmett's aggregateStream of the same stream, when Emmett is installed. */
  emmettFold?: () => Promise<unknown>;
}): Promise<void> {
  const { section, driver, foldId, store, rawFold, rawSnapshot, emmettFold } = options;
  const figure = async (name: string, runs: number, fn: () => unknown, baseline?: string) =>
    record({
      section,
      name,
      ops: 1,
      seconds: await medianSeconds(runs, async () => fn()),
      unit: 'ms per fold (median)',
      kind: 'latency',
      baseline,
    });
  const RAW_FOLD = `${driver}: fold 100k events`;
  await figure(RAW_FOLD, 3, () => rawFold(0, initialFold()));
  await figure(
    'rewind: fold 100k events',
    3,
    async () => {
      let state = initialFold();
      for (const e of await store.read(foldId)) state = evolve(state, e.data);
      return state;
    },
    RAW_FOLD,
  );
  if (emmettFold) await figure('emmett: aggregateStream of 100k events', 3, emmettFold, RAW_FOLD);
  const RAW_SNAP = `${driver}: fold from a snapshot ${SNAPSHOT_LAG} behind`;
  await figure(RAW_SNAP, 21, async () => {
    const snap = await rawSnapshot();
    return rawFold(snap.version, snap.state);
  });
  await figure(
    `rewind: fold from a snapshot ${SNAPSHOT_LAG} behind`,
    21,
    async () => {
      const snap = await store.loadSnapshot<FoldState>(foldId, 'bench-1');
      let state = snap?.state ?? initialFold();
      for (const e of await store.read(foldId, { from: (snap?.version ?? 0) + 1 })) state = evolve(state, e.data);
      return state;
    },
    RAW_SNAP,
  );
}
