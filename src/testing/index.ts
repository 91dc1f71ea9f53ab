// rewind-runtime/testing: the workflow testing kit. It loads no test runner, so it works under node:test,
// Jest, vitest or a plain script; the EventStore conformance suite, which needs vitest, is its own entry
// (rewind-runtime/testing/conformance).
export { FakeClock } from './fake-clock.js';
export { assertReplays, replay } from './replay.js';
export { fails, hangs, type StepStub, Stub, type StubCall, type Stubs, sequence, type UndoStub } from './stubs.js';
export {
  type Given,
  nextActionOf,
  type Recorded,
  SimulatedCrash,
  stepCompleted,
  stepStarted,
  type TestRun,
  type TestStartOptions,
  testWorkflow,
  WorkflowTest,
} from './workflow-test.js';
