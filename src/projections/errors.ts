import { RewindError } from '../events/errors.js';

/**
 * A projection's own code (key or evolve) threw, or returned something a read
 * model cannot hold. Inline: the append that carried the event fails and
 * nothing is written. Asynchronous, or inline on an event the append did not
 * carry (another writer's): the projection stops at that event, with this
 * error in its status, until `resume`.
 */
export class ProjectionHandlerError extends RewindError {
  readonly projection: string;
  readonly position: number;
  readonly eventId: string;
  /** What went wrong, without the event and hint around it. */
  readonly detail: string;

  constructor(
    projection: string,
    event: { position: number; id: string; type: string; streamId: string },
    detail: string,
    cause?: unknown,
  ) {
    super(
      'PROJECTION_HANDLER',
      `projection "${projection}" failed on ${event.type} at position ${event.position} (stream "${event.streamId}"): ${detail}`,
      'fix the projection code, then resume it (same version) or bump its version to rebuild',
      { cause },
    );
    this.projection = projection;
    this.position = event.position;
    this.eventId = event.id;
    this.detail = detail;
  }
}

/** The backend keeps no read models (a third-party StorageBackend without the projection host). */
export class ProjectionsUnsupportedError extends RewindError {
  constructor(backend: string) {
    super('PROJECTIONS_UNSUPPORTED', `the "${backend}" backend cannot hold read models`, 'use the memory, SQLite or PostgreSQL backend');
  }
}
