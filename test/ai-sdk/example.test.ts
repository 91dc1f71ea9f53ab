import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('examples/ai-sdk-agent.ts', () => {
  it('runs: the resumed run asks the model once more, the fork once, and the rollback compensates', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'examples/ai-sdk-agent.ts'], { encoding: 'utf8', timeout: 60_000 });
    expect(out).toContain('model calls: 3 (2 before the crash, 1 after it)');
    expect(out).toContain('model:travel-planner:3 [stream] "Have a lovely trip!"');
    expect(out).toContain('new model calls: 1');
    expect(out).toContain('(cancelled Casa Azul-3n)');
    expect(out).toContain('the run is rolled_back');
  }, 60_000);
});
