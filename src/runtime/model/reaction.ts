import type { ReactionParkedData } from '../reactions/control.js';

/**
 * What the log says of a reaction (see reactions/status.ts, which reads it):
 * a type only, so that the web debugger's bundle shares it with the runtime,
 * the CLI and the HTTP API rather than keeping a copy.
 */
export interface ReactionStatus {
  name: string;
  /** ok: following the log; parked: waiting on an event `act` could not handle, until an operator skips or retries it. */
  state: 'ok' | 'parked';
  /** The last position it handled. */
  position: number;
  head: number;
  /** Positions between its position and the head of the log (stored positions move after each page). */
  lagEvents: number;
  parked: (ReactionParkedData & { at: string }) | null;
  /** Events an operator skipped. */
  skipped: number;
  /** Who runs it now (a runtime or worker holding its lease), if anyone. */
  heldBy: { owner: string; until: string } | null;
}
