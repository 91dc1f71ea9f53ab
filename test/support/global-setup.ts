import type { TestProject } from 'vitest/node';
import build from './build-global-setup.js';
import postgres from './postgres-global-setup.js';

/**
 * Before any test: dist/ rebuilt when stale and the PostgreSQL server started,
 * side by side (each takes seconds, and they share nothing). REWIND_SKIP_POSTGRES=1
 * leaves PostgreSQL out while working on other layers.
 */
export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const [built, started] = await Promise.allSettled([
    build(),
    process.env.REWIND_SKIP_POSTGRES === '1' ? Promise.resolve(undefined) : postgres(project),
  ]);
  if (built.status === 'rejected') {
    if (started.status === 'fulfilled') await started.value?.();
    throw built.reason;
  }
  if (started.status === 'rejected') throw started.reason;
  return started.value;
}
