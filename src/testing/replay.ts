import { NonDeterminismError } from '../runtime/errors.js';
import type { RunCheck } from '../runtime/replay-check.js';
import { importRun } from '../runtime/run-export.js';
import { createRuntime } from '../runtime/runtime.js';
import { WorkflowVersionNotFoundError } from '../runtime/versioning.js';
import type { Workflow } from '../runtime/workflow.js';
import { openStore } from '../store/open.js';
import { exportedOf, type Recorded } from './workflow-test.js';

// A run recorded in production as a regression test: `rewind export RUN >
// test/runs/run.json`, then `await assertReplays('test/runs/run.json', workflows)`
// fails the test the day the code would no longer follow that run's journal.

/** Replays a recorded run against the code, running no effect: whether the code follows its journal, and if not where they part. */
export async function replay(recorded: Recorded, workflows: Workflow | Workflow[]): Promise<RunCheck> {
  const store = await openStore('memory:');
  try {
    await importRun(store, exportedOf(recorded));
    let checked: RunCheck | undefined;
    const runtime = createRuntime({ store, workflows: Array.isArray(workflows) ? workflows : [workflows] });
    await runtime.replayCheck({ onProgress: ({ run }) => (checked = run ?? checked) });
    return checked as RunCheck;
  } finally {
    await store.close();
  }
}

/** Resolves when the code follows the recorded run's journal; throws the NonDeterminismError (or the missing version's error) a resume would. */
export async function assertReplays(recorded: Recorded, workflows: Workflow | Workflow[]): Promise<void> {
  const run = await replay(recorded, workflows);
  if (run.outcome === 'diverges') {
    const { seq, journal, code } = run.divergence;
    throw new NonDeterminismError(run.runId, seq, journal, code);
  }
  if (run.outcome === 'no-code') {
    const versions = (Array.isArray(workflows) ? workflows : [workflows]).filter((w) => w.name === run.workflow).map((w) => w.version);
    throw new WorkflowVersionNotFoundError(run.workflow, run.workflowVersion, versions);
  }
}
