/** How the CLI talks: human text by default, JSON with --json, colour only on a terminal. */

const useColour = process.stdout.isTTY === true && !process.env.NO_COLOR && process.env.TERM !== 'dumb';
const paint = (code: number) => (text: string) => (useColour ? `\u001b[${code}m${text}\u001b[0m` : text);

export const colour = {
  bold: paint(1),
  dim: paint(2),
  red: paint(31),
  green: paint(32),
  yellow: paint(33),
  blue: paint(34),
  magenta: paint(35),
  cyan: paint(36),
};

// C0 and C1 controls (ESC starts terminal escape sequences, CR rewrites a line) and the bidirectional
// overrides that reorder what is shown: written as escapes, never sent to the terminal as they are.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** Text from the log (ids, names, reasons) as it may be printed on a terminal: control characters escaped (`\u001b`). */
export function safe(text: string): string {
  return text.replace(CONTROL, (c) => `\\u${(c.codePointAt(0) as number).toString(16).padStart(4, '0')}`);
}

/** The one-time indexing of a log written before the runs index, on stderr (stdout stays the command's answer). */
export function printIndexProgress(indexed: number, total: number): void {
  process.stderr.write(
    `indexing runs (once, for a log written before the runs index): ${indexed.toLocaleString('en-US')} / ${total.toLocaleString('en-US')}\n`,
  );
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function table(rows: string[][], header?: string[]): string {
  const all = header ? [header, ...rows] : rows;
  // Width without ANSI codes, so coloured cells still line up.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour codes start with ESC.
  const visible = (s: string) => s.replace(/\u001b\[\d+m/g, '').length;
  const widths = all[0]?.map((_, i) => Math.max(...all.map((r) => visible(r[i] ?? '')))) ?? [];
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - visible(c))))
      .join('  ')
      .trimEnd();
  const out = all.map(line);
  if (header) out.splice(1, 0, colour.dim(widths.map((w) => '─'.repeat(w)).join('  ')));
  return out.join('\n');
}

/** "1 event", "2 events". */
export const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** "3s ago", "2h ago": an age a person reads at a glance. */
export function age(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}
