import type { EventEnvelope } from '../events/envelope.js';
import { ValidationError } from '../events/errors.js';
import type { RunIndexBackend } from '../store/run-index.js';
import type { EventStore } from '../store/types.js';
import type { Breakers } from './breaker.js';
import type { Clock } from './clock.js';
import { Pass } from './context.js';
import { NonDeterminismError, type SerializedError, serializeError, UnknownWorkflowError } from './errors.js';
import { isRunEvent, type RunEventOf, RunEvents } from './events.js';
import { type RunStatus, statusAfter } from './journal.js';
import { isRunStatus, RUN_STATUSES } from './model/run.js';
import { readyIndex } from './run-index.js';
import { RunLog, streamOf } from './run-log.js';
import { WorkflowVersionNotFoundError } from './versioning.js';
import type { Workflow } from './workflow.js';

// The replay check: every stored run (or a sample, or a filter of them)
// replayed against the code at hand, in a pass that never goes live (the
// Pass's 'check' mode), so no step, compensation or append runs. A run whose
// journal the code would not follow is reported with the first call where
// they part. Runs are read one at a time: memory follows the largest run,
// not the log. `rewind replay` and `runtime.replayCheck()` run it.

/** Where the journal and the code part. */
export interface Divergence {
  /** The ordinal of the ctx call (0 is the first). */
  seq: number;
  /** What the journal holds there, e.g. `step "charge"` or `the end of run()`. */
  journal: string;
  /** What the code asks for there. */
  code: string;
  message: string;
}

interface CheckedRun {
  runId: string;
  workflow: string;
  workflowVersion: string;
  status: RunStatus;
}

/** How one run fares against the code. */
export type RunCheck = CheckedRun &
  (
    | { outcome: 'replays' }
    | { outcome: 'diverges'; divergence: Divergence }
    /** Its workflow, or the version it started under, is not registered: nothing here can drive it. */
    | { outcome: 'no-code'; error: SerializedError }
  );

/** Which runs to check: all (default), those not ended ('active': the ones new code will drive), or one status. */
export type RunSelection = 'all' | 'active' | RunStatus;

export interface ReplayCheckOptions {
  runs?: RunSelection;
  /** Only runs of this workflow. */
  workflow?: string;
  /** Check this many of the selected runs, picked at random, instead of all of them. */
  sample?: number;
  /** After each run looked at: how far the check has got (`total` counts the runs selected, or the sample; on a store without the runs index, every run stream). */
  onProgress?: (progress: { done: number; total: number; run?: RunCheck }) => void;
}

export interface ReplayReport {
  /** Runs replayed against the code. */
  checked: number;
  /** Of those, the runs whose journal the code follows. */
  replays: number;
  diverges: number;
  /** Runs not ended whose code is not registered: a process with only this code could not drive them. */
  noCode: number;
  /** Ended runs whose code is not registered: nothing will drive them again, so they are not checked. */
  skipped: number;
  /** The runs that diverge or have no code (the first MAX_REPORTED of them). */
  problems: RunCheck[];
  /** No run diverges and every run not ended has its code. */
  ok: boolean;
}

/** The most problems a report lists (its counts are exact): a log where everything diverges still fits in memory. */
export const MAX_REPORTED = 1000;

export interface CheckContext {
  /** The code of a version (a typed error when it is not registered). */
  workflow(name: string, version: string): Workflow;
  clock: Clock;
  breakers: Breakers;
}

const ENDED: ReadonlySet<RunStatus> = new Set(['completed', 'failed', 'cancelled']);
const PAGE = 500;

/** Replays the selected runs of a store one by one and reports how each fares. */
export async function replayCheck(store: EventStore, c: CheckContext, options: ReplayCheckOptions = {}): Promise<ReplayReport> {
  const selection = checkOptions(options);
  const report: ReplayReport = { checked: 0, replays: 0, diverges: 0, noCode: 0, skipped: 0, problems: [], ok: true };
  // With the runs index the selection is read from it; without, from each run stream's first and last events.
  const index = await readyIndex(store);
  const selected = index ? () => indexedRuns(index, selection) : undefined;
  const picked =
    options.sample === undefined ? undefined : await sampleRuns(selected?.() ?? matchingRuns(store, selection), options.sample);
  const total = picked?.length ?? (index ? await countSelected(index, selection) : await countRuns(store));
  let done = 0;
  for await (const streamId of picked ?? selected?.() ?? runStreams(store)) {
    const chosen = picked || selected || (await matches(store, streamId, selection));
    const run = chosen ? await checkRun(await store.read(streamId), store, c) : undefined;
    done++;
    if (run) tally(report, run);
    // A turn of the event loop per run: a store that answers synchronously (SQLite) would otherwise run the whole
    // check as one job, and V8 keeps every WeakRef made in a job (AbortSignal.any makes some per pass) alive until it ends.
    await new Promise<void>((resolve) => setImmediate(resolve));
    options.onProgress?.({ done, total, ...(run ? { run } : {}) });
  }
  report.ok = report.diverges === 0 && report.noCode === 0;
  return report;
}

/**
 * Replays one run's whole stream against its version's code in a pass that
 * never goes live. Exported for the testing kit, which checks a recorded run.
 */
export async function checkRun(events: EventEnvelope[], store: EventStore, c: CheckContext): Promise<RunCheck> {
  const log = new RunLog(store, startedOf(events), events);
  const { runId, workflow: name, workflowVersion } = log.started.data;
  const about: CheckedRun = { runId, workflow: name, workflowVersion, status: statusAfter(log.last) };
  let workflow: Workflow;
  try {
    workflow = c.workflow(name, workflowVersion);
  } catch (error) {
    if (error instanceof UnknownWorkflowError || error instanceof WorkflowVersionNotFoundError)
      return { ...about, outcome: 'no-code', error: serializeError(error) };
    throw error;
  }
  const pass = new Pass({
    workflow,
    log,
    breakers: c.breakers,
    clock: c.clock,
    mode: 'check',
    ended: endedByCode(events),
    signal: new AbortController().signal,
  });
  const outcome = await pass.execute(log.started.data.input);
  const error = outcome.kind === 'halted' ? outcome.halt.error : undefined;
  if (error instanceof NonDeterminismError) {
    const { seq, expected: journal, actual: code, message } = error;
    return { ...about, outcome: 'diverges', divergence: { seq, journal, code, message } };
  }
  return { ...about, outcome: 'replays' };
}

/**
 * The run's code itself ended it: `run` returned, or threw (a RunFailed not
 * written with a rollback's marker). Past such a journal's end the code must
 * ask for nothing more.
 */
function endedByCode(events: readonly EventEnvelope[]): boolean {
  const last = events[events.length - 1];
  if (!last) return false;
  if (isRunEvent(last, RunEvents.RunCompleted)) return true;
  return isRunEvent(last, RunEvents.RunFailed) && events[events.length - 2]?.type !== RunEvents.RolledBack;
}

/** Whether a run stream is one the options select, from its first and last events only. */
async function matches(store: EventStore, streamId: string, o: Selection): Promise<boolean> {
  const [first] = await store.read(streamId, { from: 1, to: 1 });
  if (!first || !isRunEvent(first, RunEvents.RunStarted)) return false;
  if (o.workflow !== undefined && first.data.workflow !== o.workflow) return false;
  if (o.runs === 'all') return true;
  const [last] = await store.read(streamId, { direction: 'backward', limit: 1 });
  const status = statusAfter(last ?? first);
  return o.runs === 'active' ? !ENDED.has(status) : status === o.runs;
}

function tally(report: ReplayReport, run: RunCheck): void {
  if (run.outcome === 'no-code' && ENDED.has(run.status)) {
    report.skipped++;
    return;
  }
  report.checked++;
  if (run.outcome === 'replays') report.replays++;
  else {
    if (run.outcome === 'diverges') report.diverges++;
    else report.noCode++;
    if (report.problems.length < MAX_REPORTED) report.problems.push(run);
  }
}

async function* runStreams(store: EventStore): AsyncGenerator<string> {
  for (let after: string | undefined; ; ) {
    const page = await store.listStreams({ prefix: 'run-', limit: PAGE, ...(after ? { after } : {}) });
    for (const { streamId } of page) yield streamId;
    if (page.length < PAGE) return;
    after = page.at(-1)?.streamId;
  }
}

async function countRuns(store: EventStore): Promise<number> {
  let n = 0;
  for await (const _ of runStreams(store)) n++;
  return n;
}

/** The selected runs' streams, in id order, from the runs index. */
async function* indexedRuns(index: RunIndexBackend, s: Selection): AsyncGenerator<string> {
  const status = s.runs === 'all' || s.runs === 'active' ? undefined : s.runs;
  let after: string | undefined;
  for (;;) {
    const rows = await index.page({
      order: 'id',
      limit: PAGE,
      ...(status ? { status } : {}),
      ...(s.workflow === undefined ? {} : { workflow: s.workflow }),
      ...(after === undefined ? {} : { after: { runId: after } }),
    });
    for (const row of rows) if (s.runs !== 'active' || !isEnded(row.status)) yield streamOf(row.runId);
    if (rows.length < PAGE) return;
    after = rows.at(-1)?.runId;
  }
}

/** How many runs the selection holds, from the index's counts. */
async function countSelected(index: RunIndexBackend, s: Selection): Promise<number> {
  let n = 0;
  for (const row of await index.counts()) {
    if (s.workflow !== undefined && row.workflow !== s.workflow) continue;
    if (s.runs === 'all' || (s.runs === 'active' ? !isEnded(row.status) : row.status === s.runs)) n += row.runs;
  }
  return n;
}

const isEnded = (status: string) => isRunStatus(status) && ENDED.has(status);

/** Without the index: the run streams whose ends match the selection. */
async function* matchingRuns(store: EventStore, selection: Selection): AsyncGenerator<string> {
  for await (const streamId of runStreams(store)) if (await matches(store, streamId, selection)) yield streamId;
}

/** A uniform sample of the selected runs (reservoir sampling: memory follows the sample, not the log). */
async function sampleRuns(selected: AsyncIterable<string>, size: number): Promise<string[]> {
  const reservoir: string[] = [];
  let seen = 0;
  for await (const streamId of selected) {
    seen++;
    if (reservoir.length < size) reservoir.push(streamId);
    else {
      const j = Math.floor(Math.random() * seen);
      if (j < size) reservoir[j] = streamId;
    }
  }
  return reservoir.sort();
}

function startedOf(events: readonly EventEnvelope[]): RunEventOf<'RunStarted'> {
  const first = events[0];
  if (!first || !isRunEvent(first, RunEvents.RunStarted)) throw new ValidationError("a run's events start with its RunStarted");
  return first;
}

interface Selection {
  runs: RunSelection;
  workflow?: string;
}

function checkOptions(o: ReplayCheckOptions): Selection {
  const issues: string[] = [];
  const runs = o.runs ?? 'all';
  if (runs !== 'all' && runs !== 'active' && !isRunStatus(runs))
    issues.push(`runs must be 'all', 'active' or a status (${RUN_STATUSES.join(', ')})`);
  if (o.sample !== undefined && (!Number.isSafeInteger(o.sample) || o.sample < 1)) issues.push('sample must be a positive integer');
  if (o.workflow !== undefined && (typeof o.workflow !== 'string' || o.workflow === '')) issues.push('workflow must be a workflow name');
  if (issues.length) throw new ValidationError('invalid replay check options', issues);
  return { runs, ...(o.workflow === undefined ? {} : { workflow: o.workflow }) };
}
