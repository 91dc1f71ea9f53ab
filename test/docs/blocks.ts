/**
 * The fenced code blocks of a markdown file, and what the doc tests do with
 * each. The info string is a language and flags (GitHub and npm show the
 * language only):
 *
 * - ```ts: type-checked strictly, compiled, and run in the document's own
 *   directory (blocks of one document run in order and share it, as a reader
 *   following along would). `continues`: the code of the document's previous
 *   ts block comes first (the block reads as the next part of the same program).
 * - ```sh: each command is run there in order and must succeed. Only `npx rewind …`
 *   commands can be run; a block holding anything else must say `no-run`.
 * - ```text output: what the previous block printed, exactly.
 * - `no-run`: not run, and the markdown says so (ts blocks are still type-checked).
 *   Any other block must carry it: the doc tests fail on an unmarked block they cannot run.
 */
export interface Block {
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  flags: Set<string>;
  code: string;
}

export type Plan =
  | { kind: 'ts'; run: boolean; source: string }
  | { kind: 'sh'; commands: string[] }
  | { kind: 'output'; expected: string }
  | { kind: 'skip' }
  | { kind: 'unrunnable'; why: string };

const FENCE = /^(\s*)(`{3,}|~{3,})(.*)$/;

export function blocksOf(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i] as string);
    if (!open) continue;
    const [, indent, fence, info] = open as unknown as [string, string, string, string];
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const line = lines[j] as string;
      if (line.trim().startsWith(fence) && line.trim().replace(/[`~]/g, '') === '') break;
      body.push(line.startsWith(indent) ? line.slice(indent.length) : line);
    }
    const [lang = '', ...flags] = info.trim().split(/\s+/);
    blocks.push({ line: i + 1, lang: lang.toLowerCase(), flags: new Set(flags), code: `${body.join('\n')}\n` });
    i = j;
  }
  return blocks;
}

const TYPESCRIPT = new Set(['ts', 'typescript']);
const SHELL = new Set(['sh', 'bash', 'shell']);
/** A command the doc tests may run: the package's own CLI, as a user runs it after installing. */
const RUNNABLE_COMMAND = /^npx rewind( |$)/;

/** What to do with each block of one document (a ts block's source includes the blocks it continues). */
export function planOf(blocks: readonly Block[]): Plan[] {
  let previousTs: string | undefined;
  return blocks.map((block): Plan => {
    if (TYPESCRIPT.has(block.lang)) {
      if (block.flags.has('continues') && previousTs === undefined) {
        return { kind: 'unrunnable', why: '`continues` but no ts block comes before it' };
      }
      const source = block.flags.has('continues') ? `${previousTs}\n${block.code}` : block.code;
      previousTs = source;
      return { kind: 'ts', run: !block.flags.has('no-run'), source };
    }
    if (block.flags.has('no-run')) return { kind: 'skip' };
    if (block.lang === 'text' && block.flags.has('output')) return { kind: 'output', expected: block.code };
    if (SHELL.has(block.lang)) {
      const commands = block.code
        .split('\n')
        .map((line) => line.replace(/\s+#.*$/, '').trim())
        .filter((line) => line !== '' && !line.startsWith('#'));
      const other = commands.find((c) => !RUNNABLE_COMMAND.test(c));
      if (other !== undefined) return { kind: 'unrunnable', why: `cannot run \`${other}\` (only npx rewind …): mark the block no-run` };
      return { kind: 'sh', commands };
    }
    return { kind: 'unrunnable', why: `a \`${block.lang || 'plain'}\` block is not run: mark it no-run` };
  });
}
