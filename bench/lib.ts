/** Small helpers shared by the benchmark sections: timing and a plain table. */

export interface Figure {
  section: string;
  name: string;
  ops: number;
  seconds: number;
  unit: string;
  /** Name of the figure in the same section this one is compared with. */
  baseline?: string;
}

export const figures: Figure[] = [];

/** Runs `fn` once (after an optional warm-up) and records ops per second. */
export async function measure(
  section: string,
  name: string,
  ops: number,
  fn: () => Promise<void> | void,
  options: { unit?: string; baseline?: string; warmup?: () => Promise<void> | void } = {},
): Promise<Figure> {
  if (options.warmup) await options.warmup();
  const start = process.hrtime.bigint();
  await fn();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const figure = { section, name, ops, seconds, unit: options.unit ?? 'ops/s', baseline: options.baseline };
  figures.push(figure);
  const rate = ops / seconds;
  process.stderr.write(`  ${section} · ${name}: ${fmt(rate)} ${figure.unit}\n`);
  return figure;
}

export function fmt(n: number): string {
  if (n >= 100) return Math.round(n).toLocaleString('en-US');
  return n.toFixed(n >= 10 ? 1 : 2);
}

export function printTable(): void {
  const rows = figures.map((f) => {
    const rate = f.ops / f.seconds;
    const base = f.baseline ? figures.find((b) => b.section === f.section && b.name === f.baseline) : undefined;
    const ratio = base ? `${(rate / (base.ops / base.seconds)).toFixed(2)}× ${f.baseline}` : '';
    return [f.section, f.name, `${fmt(rate)} ${f.unit}`, ratio];
  });
  const header = ['section', 'measure', 'rate', 'ratio'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}
