import { execFileSync } from 'node:child_process';
/**
 * Small helpers shared by the benchmark sections: timing, a plain table, JSON,
 * and the findings and targets each section reports beside its figures.
 */

export interface Figure {
  section: string;
  name: string;
  ops: number;
  seconds: number;
  unit: string;
  /** Name of the figure in the same section this one is compared with. */
  baseline?: string;
  /** 'latency' figures print milliseconds per op, and their ratio compares times (lower is better). */
  kind?: 'rate' | 'latency';
}

export interface Note {
  section: string;
  text: string;
}

export interface Target {
  section: string;
  what: string;
  met: boolean;
  /** The measured value, e.g. "0.93× raw". */
  got: string;
  why?: string;
}

export const figures: Figure[] = [];
export const notes: Note[] = [];
export const targets: Target[] = [];

/** Clears everything recorded, so a second run in one process starts empty. */
export function resetFigures(): void {
  figures.length = 0;
  notes.length = 0;
  targets.length = 0;
}

/** Runs `fn` once (after an optional warm-up) and records ops per second (or, for latency, ms per op). */
export async function measure(
  section: string,
  name: string,
  ops: number,
  fn: () => Promise<void> | void,
  options: { unit?: string; baseline?: string; warmup?: () => Promise<void> | void; kind?: 'rate' | 'latency' } = {},
): Promise<Figure> {
  if (options.warmup) await options.warmup();
  const start = process.hrtime.bigint();
  await fn();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return record({ section, name, ops, seconds, unit: options.unit ?? 'ops/s', baseline: options.baseline, kind: options.kind });
}

export interface Contestant {
  name: string;
  /** Operations one round does. */
  ops: number;
  /** One round; `round` lets it use fresh data (a new thread, a new stream) each time. */
  run: (round: number) => Promise<void>;
  baseline?: string;
}

/**
 * Writes the page cache's dirty pages out (sync(1)) before a turn, outside
 * its time. Otherwise the kernel writes back what one contestant left dirty
 * while the next one runs, and the next one's fsyncs wait for it: a saver that
 * writes 14× more would slow the other down.
 */
function settleDisk(): void {
  try {
    execFileSync('sync', { stdio: 'ignore' });
  } catch {
    // No sync(1) here: the turns share the writeback as before.
  }
}

/**
 * Runs the contestants in turns (a, b, a, b, …) for `rounds` rounds after
 * `warmups` unrecorded turns each (so the JIT has compiled every one's hot
 * paths), and records each one's median round. On a shared machine both then
 * see the same noise, which one run each does not.
 */
export async function measureInTurns(section: string, unit: string, rounds: number, contestants: Contestant[], warmups = 1): Promise<void> {
  const times = contestants.map(() => [] as number[]);
  for (let round = 0; round < warmups + rounds; round++) {
    for (const [i, c] of contestants.entries()) {
      settleDisk();
      const start = process.hrtime.bigint();
      await c.run(round);
      if (round >= warmups) times[i]?.push(Number(process.hrtime.bigint() - start) / 1e9);
    }
  }
  for (const [i, c] of contestants.entries()) {
    const sorted = (times[i] as number[]).sort((a, b) => a - b);
    const seconds = sorted[sorted.length >> 1] as number;
    record({ section, name: c.name, ops: c.ops, seconds, unit: `${unit}, median of ${rounds}`, baseline: c.baseline });
  }
}

/** Records a figure measured by other means (say, a median of several timings). */
export function record(figure: Figure): Figure {
  const clean: Figure = { ...figure };
  if (clean.baseline === undefined) delete clean.baseline;
  if (clean.kind === undefined) delete clean.kind;
  figures.push(clean);
  process.stderr.write(`  ${clean.section} · ${clean.name}: ${display(clean)}\n`);
  return clean;
}

/** A finding worth printing under the table (a failure of a peer under load, a caveat of method). */
export function note(section: string, text: string): void {
  notes.push({ section, text });
  process.stderr.write(`  ${section} · note: ${text}\n`);
}

export function target(t: Target): void {
  targets.push(t);
  process.stderr.write(`  ${t.section} · target ${t.met ? 'met' : 'MISSED'}: ${t.what} (${t.got})\n`);
}

/** ops/s, or for a latency figure ms per op. */
export function rateOf(f: Figure): number {
  return f.ops / f.seconds;
}

export function latencyMs(f: Figure): number {
  return (f.seconds / f.ops) * 1000;
}

export function find(section: string, name: string): Figure | undefined {
  return figures.find((f) => f.section === section && f.name === name);
}

/** This figure over its baseline: rates divide rates; latencies divide times. */
export function ratio(f: Figure, base: Figure | undefined = f.baseline ? find(f.section, f.baseline) : undefined): number | undefined {
  if (!base) return undefined;
  return f.kind === 'latency' ? latencyMs(f) / latencyMs(base) : rateOf(f) / rateOf(base);
}

export function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (n >= 100) return Math.round(n).toLocaleString('en-US');
  if (n >= 0.01 || n === 0) return n.toFixed(n >= 10 ? 1 : 2);
  return n.toPrecision(2);
}

function display(f: Figure): string {
  return f.kind === 'latency' ? `${fmt(latencyMs(f))} ${f.unit}` : `${fmt(rateOf(f))} ${f.unit}`;
}

export function printTable(out: (line: string) => void = (l) => console.log(l)): void {
  const rows = figures.map((f) => {
    const r = ratio(f);
    const cell = r === undefined ? '' : `${r.toFixed(2)}× ${f.kind === 'latency' ? 'the time of ' : ''}${f.baseline}`;
    return [f.section, f.name, display(f), cell];
  });
  const header = ['section', 'measure', 'figure', 'ratio'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 2 ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  out(line(header));
  out(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) out(line(row));
  if (targets.length > 0) {
    out('');
    out('targets');
    for (const t of targets) out(`  [${t.met ? 'met' : 'MISSED'}] ${t.section}: ${t.what}: ${t.got}${t.why ? ` (${t.why})` : ''}`);
  }
  if (notes.length > 0) {
    out('');
    out('notes');
    for (const n of notes) out(`  ${n.section}: ${n.text}`);
  }
}

/** Everything recorded, as `rewind bench --json` prints it. */
export function toJson(meta: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...meta,
    figures: figures.map((f) => {
      const r = ratio(f);
      return {
        ...f,
        ...(f.kind === 'latency' ? { msPerOp: latencyMs(f) } : { perSecond: rateOf(f) }),
        ...(r === undefined ? {} : { ratio: r }),
      };
    }),
    targets,
    notes,
  };
}

/** Records a latency measured elsewhere (ms per op). */
export function recordLatency(section: string, name: string, ms: number): void {
  record({ section, name, ops: 1, seconds: ms / 1000, unit: 'ms', kind: 'latency' });
}

/** The value at quantile q of the samples (q 0.5: the median); 0 without samples. */
export function quantile(samples: number[], q: number): number {
  const sorted = [...samples].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

/** One decimal unless whole. */
export function fmt1(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}
