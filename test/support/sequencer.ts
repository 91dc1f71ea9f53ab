import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take longest (each a minute or more of real processes:
 * crash and concurrency tortures), started first. Vitest's own order on a
 * clean clone (no timings cached) is by file size, which put these small files
 * late, so the run ended with one of them going alone while the other workers
 * sat idle. Longest first is what keeps three workers busy to the end.
 */
const LONGEST_FIRST = [
  'test/torture/sqlite-inline.test.ts',
  'test/torture/sqlite-declared.test.ts',
  'test/torture/postgres.test.ts',
  'test/cli/cli.test.ts',
  'test/reactions/postgres.test.ts',
  'test/concurrency/sqlite.test.ts',
  'test/langgraph/sigkill.test.ts',
  'test/reactions/sqlite.test.ts',
  'test/docs/docs.test.ts',
];

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => {
      const i = LONGEST_FIRST.indexOf(relative(f.project.config.root, f.moduleId));
      return i === -1 ? LONGEST_FIRST.length : i;
    };
    // Stable: the rest keep vitest's order.
    return sorted
      .map((f, i) => ({ f, i }))
      .sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i)
      .map(({ f }) => f);
  }
}
