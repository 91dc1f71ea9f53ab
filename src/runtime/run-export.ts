import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { EventEnvelope, NewEvent } from '../events/envelope.js';
import { ValidationError } from '../events/errors.js';
import type { EventStore } from '../store/types.js';
import { RunNotFoundError } from './errors.js';
import { RunEvents } from './events.js';
import { streamOf } from './run-log.js';

// One run's stream as a file (`rewind export RUN > run.json`): what the
// replay check and the testing kit read to turn a run recorded in production
// into a regression test.

export const RUN_EXPORT_FORMAT = 'rewind.run';

export interface ExportedRun {
  format: typeof RUN_EXPORT_FORMAT;
  formatVersion: 1;
  runId: string;
  exportedAt: string;
  /** Every event of the run's stream, version 1 first, as stored. */
  events: EventEnvelope[];
}

export async function exportRun(store: EventStore, runId: string): Promise<ExportedRun> {
  const events = await store.read(streamOf(runId));
  if (events.length === 0) throw new RunNotFoundError(runId);
  return { format: RUN_EXPORT_FORMAT, formatVersion: 1, runId, exportedAt: new Date().toISOString(), events };
}

const Envelope = z.object({
  id: z.string().min(1),
  streamId: z.string(),
  version: z.number().int().positive(),
  position: z.number().int().nonnegative(),
  type: z.string().min(1),
  schemaVersion: z.number().int().positive(),
  data: z.unknown(),
  metadata: z.record(z.string(), z.unknown()),
  recordedAt: z.string(),
  hash: z.string(),
});

const Exported = z.object({
  format: z.literal(RUN_EXPORT_FORMAT),
  formatVersion: z.literal(1),
  runId: z.string().min(1),
  exportedAt: z.string(),
  events: z.array(Envelope).min(1),
});

/** Checks what a file claims to be an exported run: a typed error saying what is wrong, never a half-read run. */
export function parseExportedRun(value: unknown, source = 'the exported run'): ExportedRun {
  const parsed = Exported.safeParse(value);
  const hint = 'export the run again with `rewind export RUN > run.json`';
  if (!parsed.success) {
    throw new ValidationError(
      `${source} is not an exported run`,
      parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`),
      hint,
    );
  }
  const run = parsed.data as ExportedRun;
  const issues: string[] = [];
  run.events.forEach((e, i) => {
    if (e.version !== i + 1) issues.push(`events.${i}.version: expected ${i + 1}, got ${e.version}`);
  });
  const first = run.events[0] as EventEnvelope;
  if (first.type !== RunEvents.RunStarted) issues.push(`events.0.type: a run starts with RunStarted, got ${first.type}`);
  else if ((first.data as { runId?: unknown } | null)?.runId !== run.runId) issues.push(`events.0.data.runId: expected "${run.runId}"`);
  if (issues.length) throw new ValidationError(`${source} is not a whole run`, issues, hint);
  return run;
}

/**
 * Writes an exported run into a store under its own run id (the store must
 * not hold it yet), keeping each event's id, type, data, metadata and time;
 * the store numbers, positions and chains them anew.
 */
export async function importRun(store: EventStore, run: ExportedRun): Promise<string> {
  const events: NewEvent[] = run.events.map((e) => ({
    id: e.id,
    type: e.type,
    schemaVersion: e.schemaVersion,
    data: e.data,
    metadata: e.metadata,
    recordedAt: e.recordedAt,
  }));
  await store.append(streamOf(run.runId), events, { expectedVersion: 'no_stream' });
  return run.runId;
}

/** Reads and checks a file written by `rewind export`: a typed error for a file that is missing, not JSON or not a run. */
export function readExportedRun(file: string): ExportedRun {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ValidationError(`cannot read the exported run ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ValidationError(`the exported run ${file} is not JSON: ${(error as Error).message}`);
  }
  return parseExportedRun(value, file);
}
