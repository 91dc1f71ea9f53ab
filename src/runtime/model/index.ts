/**
 * The run model: what a run's events mean, as pure functions and types, with
 * no I/O, no Node.js and no DOM. The runtime, the CLI and the web debugger's
 * browser bundle all import it, so none of them keeps a copy of its own.
 *
 * - the shared types: the envelope, the runtime's events (a discriminated
 *   union, `asRunEvent`), a run's status and info (run.ts);
 * - the effective history and the status after an event (journal.ts, which
 *   the runtime's replay uses: re-exported here, defined once there);
 * - the history view: every event with its mark (history.ts);
 * - a point in a run and the state there (point.ts, state-at.ts);
 * - two runs compared, and two states (run-diff.ts, state-diff.ts);
 * - one line per event (timeline.ts);
 * - what the log says of a reaction (reaction.ts: a type, read by reactions/status.ts).
 */
export type { EventEnvelope, EventMetadata, Json } from '../../events/envelope.js';
export type { SerializedError } from '../errors.js';
export * from '../events.js';
export { checkpointIndexOf, effectiveEvents, foldState, isDomainEvent, rollbacksOf } from '../journal.js';
export type { RollbackInfo } from '../workflow.js';
export * from './history.js';
export * from './point.js';
export type * from './reaction.js';
export * from './run.js';
export * from './run-diff.js';
export * from './state-at.js';
export * from './state-diff.js';
export * from './timeline.js';
