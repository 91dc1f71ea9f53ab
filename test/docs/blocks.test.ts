// The rules the doc tests apply to a guide's code blocks (the tests themselves are docs.test.ts).
import { describe, expect, it } from 'vitest';
import { blocksOf, planOf } from './blocks.js';

const fence = '```';
const guide = [
  '# A guide',
  `${fence}ts`,
  "import { openStore } from 'rewind-runtime';",
  `${fence}`,
  `${fence}ts continues`,
  'console.log(1);',
  `${fence}`,
  `${fence}text output`,
  '1',
  `${fence}`,
  `${fence}sh`,
  'npx rewind demo   # the demo',
  '',
  'npx rewind verify',
  `${fence}`,
  `${fence}sh`,
  'npm install rewind-runtime',
  `${fence}`,
  `${fence}sh no-run`,
  'npm install rewind-runtime',
  `${fence}`,
  `${fence}json`,
  '{}',
  `${fence}`,
  `${fence}ts no-run`,
  'describe();',
  `${fence}`,
].join('\n');

describe('doc-test plans', () => {
  it('run ts and npx rewind blocks, check output blocks, and refuse unmarked blocks they cannot run', () => {
    const blocks = blocksOf(guide);
    expect(blocks.map((b) => [b.line, b.lang, [...b.flags]])).toEqual([
      [2, 'ts', []],
      [5, 'ts', ['continues']],
      [8, 'text', ['output']],
      [11, 'sh', []],
      [16, 'sh', []],
      [19, 'sh', ['no-run']],
      [22, 'json', []],
      [25, 'ts', ['no-run']],
    ]);
    expect(planOf(blocks)).toEqual([
      { kind: 'ts', run: true, source: "import { openStore } from 'rewind-runtime';\n" },
      { kind: 'ts', run: true, source: "import { openStore } from 'rewind-runtime';\n\nconsole.log(1);\n" },
      { kind: 'output', expected: '1\n' },
      { kind: 'sh', commands: ['npx rewind demo', 'npx rewind verify'] },
      { kind: 'unrunnable', why: 'cannot run `npm install rewind-runtime` (only npx rewind …): mark the block no-run' },
      { kind: 'skip' },
      { kind: 'unrunnable', why: 'a `json` block is not run: mark it no-run' },
      { kind: 'ts', run: false, source: 'describe();\n' },
    ]);
  });

  it('refuse a first ts block that says it continues another', () => {
    expect(planOf(blocksOf(`${fence}ts continues\nx;\n${fence}`))).toEqual([
      { kind: 'unrunnable', why: '`continues` but no ts block comes before it' },
    ]);
  });
});
