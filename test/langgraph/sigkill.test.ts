import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open.js';
import { RewindCheckpointSaver } from '../../src/surfaces/langgraph/index.js';
import { runChild } from '../support/child.js';
import { databaseUrl, uniqueSchema } from '../support/postgres.js';
import { tempDir } from '../support/temp.js';
import { counterGraph } from './graph.js';
import { withPostgres } from './helpers.js';

const CHILD = 'test/fixtures/langgraph-child.ts';

/** Per backend: where a fresh thread lives, what the child needs besides the url, and how to open it here. */
const backends: [string, () => { url: string; args: string[]; options: { schema?: string } }][] = [
  ['SQLite', () => ({ url: `sqlite:${join(tempDir('rewind-lg-kill-'), 'agent.db')}`, args: [], options: {} })],
];
if (withPostgres) {
  backends.push([
    'PostgreSQL',
    () => {
      const schema = uniqueSchema();
      return { url: databaseUrl(), args: [schema], options: { schema } };
    },
  ]);
}

describe.each(backends)('a LangGraph thread on %s, its process killed again and again', (_name, backend) => {
  // Six processes, each compiling the child with tsx: a busy machine (other test files beside it) may take a minute.
  it('resumes each time from the log and ends exactly as an uninterrupted run, its chain whole', { timeout: 120_000 }, async () => {
    const { url, args, options } = backend();
    const until = 300;
    let last = '';
    let kills = 0;
    // Kills land mid-step, mid-append and (every 64 events) mid-snapshot; the last run goes to the end.
    for (const kill of [150, 90, 230, 40, 120, undefined]) {
      last = await runChild(CHILD, [url, 'killed', String(until), ...args], kill);
      if (last === 'killed') kills++;
      if (last === `done ${until}`) break;
    }
    expect(last).toBe(`done ${until}`);
    expect(kills).toBeGreaterThanOrEqual(3);

    const store = await openStore(url, options);
    try {
      const config = { configurable: { thread_id: 'killed' } };
      const saver = new RewindCheckpointSaver(store);
      const state = await counterGraph(saver).getState(config);
      expect(state.values.log).toEqual(['start', ...Array.from({ length: until }, (_, i) => `inc ${i + 1}`)]);
      expect(state.next).toEqual([]);
      expect((await store.verify()).ok).toBe(true);
      // A saver opening the thread from its snapshot sees the same, and so does one reading the whole history.
      const history = [];
      for await (const t of saver.list(config)) history.push(t.checkpoint.id);
      expect(history.length).toBeGreaterThan(until);
      expect(await new RewindCheckpointSaver(store).getTuple(config)).toEqual(await saver.getTuple(config));
    } finally {
      await store.close();
    }
  });
});
