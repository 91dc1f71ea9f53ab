import { RewindError } from '../../events/errors.js';

/** No reaction of that name has run against this log. Nothing was written. */
export class ReactionNotFoundError extends RewindError {
  readonly reaction: string;
  constructor(reaction: string, known: readonly string[]) {
    super(
      'REACTION_NOT_FOUND',
      `no reaction named "${reaction}" has run against this log`,
      known.length > 0 ? `known reactions: ${known.join(', ')}` : 'a reaction appears once a runtime or worker has run it',
    );
    this.reaction = reaction;
  }
}

/** The reaction is not parked on an event, so there is nothing to skip or retry. Nothing was written. */
export class ReactionStateError extends RewindError {
  readonly reaction: string;
  constructor(reaction: string, wanted: string) {
    super('REACTION_STATE', `reaction "${reaction}" is not parked on an event; cannot ${wanted}`, 'see its state with `rewind reactions`');
    this.reaction = reaction;
  }
}
