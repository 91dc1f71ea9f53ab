export type { ActionOutcome } from './carry-out.js';
export { type ParkedEvent, ReactionEvents } from './control.js';
export {
  defineReaction,
  type Reaction,
  type ReactionAction,
  type ReactionDefinition,
  type ReactionOn,
  type ReactionResult,
  type UndoneHandling,
} from './definition.js';
export { ReactionNotFoundError, ReactionStateError } from './errors.js';
export { Reactions } from './reactions.js';
export type { ReactionEvent } from './reactor.js';
export { type ReactionStatus, reactionStatus, reactionStatuses, settleParked } from './status.js';
