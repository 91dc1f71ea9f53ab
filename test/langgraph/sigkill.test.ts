import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open.js';
import { RewindCheckpointSaver } from '../../src/surfaces/langgraph/index.js';
import { runChild } from '../support/child.js';
import { tempDir } from '../support/temp.js';
import { counterGraph } from './graph.js';

const CHILD = 'test/fixtures/langgraph-child.ts';

describe('a LangGraph thread on SQLite, its process killed again and again', () => {
  it('resumes each time from the log and ends exactly as an uninterrupted run, its chain whole', async () => {
    const file = join(tempDir('rewind-lg-kill-'), 'agent.db');
    const until = 300;
    let last = '';
    let kills = 0;
    // Kills land mid-step, mid-append and (every 64 events) mid-snapshot; the last run goes to the end.
    for (const kill of [150, 90, 230, 40, 120, undefined]) {
      last = await runChild(CHILD, [file, 'killed', String(until)], kill);
      if (last === 'killed') kills++;
      if (last === `done ${until}`) break;
    }
    expect(last).toBe(`done ${until}`);
    expect(kills).toBeGreaterThanOrEqual(3);

    const store = await openStore(`sqlite:${file}`);
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
