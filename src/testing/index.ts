export { type ConformanceOptions, describeEventStoreConformance } from './conformance.js';
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
