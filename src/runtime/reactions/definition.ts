import { createHash } from 'node:crypto';
import type { EventEnvelope } from '../../events/envelope.js';
import { ValidationError } from '../../events/errors.js';
import type { RetryOptions } from '../policy.js';
import type { RollbackRequest } from '../rollback/commands.js';
import type { Workflow } from '../workflow.js';

/**
 * What a reaction does about one event. Every action is idempotent under a key
 * made of the reaction and the event (see keyOf), so an event delivered again
 * after a crash joins what it did the first time instead of doing it twice.
 */
export type ReactionAction =
  /** Starts a run. Its id is derived from the reaction and the event unless given. */
  | { start: Workflow | string; input?: unknown; runId?: string }
  /**
   * Sends a signal. When the run does not exist yet and `start` is given, the
   * run is started with that id (signal-with-start); without `start`, the
   * signal waits in the run's mailbox for a run started later with that id.
   */
  | { signal: string; name: string; payload?: unknown; start?: { workflow: Workflow | string; input?: unknown } }
  /** Cancels a run (carried out by its driver). */
  | { cancel: string; reason?: string }
  /** Rolls a run back (carried out by its driver): to 'start' unless told. */
  | { rollback: string; to?: RollbackRequest['to']; reason?: string };

/** What `act` answers: one action, several, or nothing to do. */
export type ReactionResult = ReactionAction | readonly ReactionAction[] | null | undefined | void;

export interface ReactionOn {
  /** Only events of these types. */
  types?: string[];
  /** Only events of streams whose id starts with this (runs: 'run-'). */
  streamPrefix?: string;
  /** A last say, given the event: false leaves it alone. Pure and quick; it may run again for an event. */
  filter?: (event: EventEnvelope) => boolean;
}

/**
 * What to do when an event the reaction had already reached is undone by a
 * rollback of its stream (its `RolledBack` marker comes later in the log):
 * 'keep' (default) leaves what the reaction did; 'cancel' or 'rollback' asks
 * each run the reaction started for that event (under its derived id) to
 * cancel, or to roll back to its start; a function answers, like `act`, what
 * to do (given the runs the reaction started for the event).
 */
export type UndoneHandling =
  | 'keep'
  | 'cancel'
  | 'rollback'
  | ((event: EventEnvelope, started: string[]) => ReactionResult | Promise<ReactionResult>);

export interface ReactionDefinition {
  /** Names the reaction in the log, its position and its runs' ids: letters, digits, _ . - (at most 80). */
  name: string;
  on: ReactionOn;
  /** Decides what to do about an event. Called again for an event delivered again; its actions are idempotent per event. */
  act: (event: EventEnvelope) => ReactionResult | Promise<ReactionResult>;
  undone?: UndoneHandling;
  /**
   * Where a reaction that has never run starts: 'start' (default) reacts to
   * every matching event already in the log; 'now', only to those appended
   * after it first runs.
   */
  from?: 'start' | 'now';
  /** Events acted on at once, from different streams; events of one stream go in order. Default 8. */
  concurrency?: number;
  /** Attempts of `act` (and of carrying its answer out) before the reaction parks on the event. Default 5 attempts from 200 ms. */
  retry?: RetryOptions;
}

export type Reaction = Readonly<Required<Pick<ReactionDefinition, 'name' | 'on' | 'act' | 'undone' | 'from' | 'concurrency'>>> & {
  readonly retry: Required<Pick<RetryOptions, 'attempts' | 'initialDelayMs'>> & RetryOptions;
  readonly kind: 'reaction';
};

const NAME = /^[A-Za-z0-9_.-]{1,80}$/;

/**
 * Declares a reaction: it follows the log from a stored position and, for
 * each matching event that still counts (not undone by a rollback), does what
 * `act` answers, exactly once in effect. Give it to `createRuntime({ reactions })`
 * or `createWorker({ reactions })`; processes that share a log share the work
 * (one of them holds each reaction at a time).
 */
export function defineReaction(definition: ReactionDefinition): Reaction {
  const issues: string[] = [];
  const d = definition as Partial<ReactionDefinition> | undefined;
  if (!d || typeof d !== 'object') throw new ValidationError('defineReaction needs { name, on, act }');
  if (typeof d.name !== 'string' || !NAME.test(d.name)) issues.push('name must be 1-80 letters, digits, _ . or -');
  const on = d.on;
  if (!on || typeof on !== 'object')
    issues.push('on must say which events: { types?: string[], streamPrefix?: string, filter?: (event) => boolean }');
  else {
    if (
      on.types !== undefined &&
      (!Array.isArray(on.types) || on.types.length === 0 || on.types.some((t) => typeof t !== 'string' || t === ''))
    )
      issues.push('on.types must be a non-empty array of event types');
    if (on.streamPrefix !== undefined && (typeof on.streamPrefix !== 'string' || on.streamPrefix === ''))
      issues.push('on.streamPrefix must be a non-empty string');
    if (on.filter !== undefined && typeof on.filter !== 'function') issues.push('on.filter must be a function of the event');
  }
  if (typeof d.act !== 'function') issues.push('act must be a function of the event answering what to do');
  const undone = d.undone ?? 'keep';
  if (typeof undone !== 'function' && !['keep', 'cancel', 'rollback'].includes(undone))
    issues.push("undone must be 'keep', 'cancel', 'rollback' or a function of (event, started)");
  const from = d.from ?? 'start';
  if (from !== 'start' && from !== 'now') issues.push("from must be 'start' or 'now'");
  const concurrency = d.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256)
    issues.push('concurrency must be a whole number from 1 to 256');
  const retry = { attempts: 5, initialDelayMs: 200, ...d.retry };
  if (!Number.isInteger(retry.attempts) || retry.attempts < 1) issues.push('retry.attempts must be a whole number of at least 1');
  if (!(retry.initialDelayMs >= 0)) issues.push('retry.initialDelayMs must be a number of milliseconds, at least 0');
  if (issues.length) throw new ValidationError(`reaction ${JSON.stringify(d.name ?? '(unnamed)')} is not valid`, issues);
  return Object.freeze({
    kind: 'reaction' as const,
    name: d.name as string,
    on: on as ReactionOn,
    act: d.act as Reaction['act'],
    undone,
    from,
    concurrency,
    retry,
  });
}

export function isReaction(value: unknown): value is Reaction {
  return (
    typeof value === 'object' && value !== null && (value as Reaction).kind === 'reaction' && typeof (value as Reaction).act === 'function'
  );
}

/** Two reactions of one name in one runtime would share a position and a lease: refused. */
export function checkReactions(reactions: readonly Reaction[]): void {
  const seen = new Set<string>();
  for (const r of reactions) {
    if (!isReaction(r)) throw new ValidationError('reactions must be made by defineReaction()');
    if (seen.has(r.name)) throw new ValidationError(`two reactions are named "${r.name}"`, [], 'give each reaction its own name');
    seen.add(r.name);
  }
}

/** The reaction's own stream: its start, parks, skips and retries, and the lease that lets one process run it. */
export function controlStreamOf(name: string): string {
  return `$rewind-reaction-${name}`;
}

/** Where the reaction's position is stored (the store's named consumers). */
export function consumerOf(name: string): string {
  return `reaction:${name}`;
}

const RUN_ID = /^[A-Za-z0-9_.:@-]{1,200}$/;

/**
 * The idempotency key of the `index`-th action for an event: the id of the
 * run it starts (unless given) and of the signal it sends. An event id that
 * would not make a valid run id is replaced by its SHA-256.
 */
export function keyOf(reaction: string, eventId: string, index: number, what = ''): string {
  const key = `${reaction}:${what}${eventId}${index > 0 ? `:${index}` : ''}`;
  if (RUN_ID.test(key)) return key;
  return `${reaction}:${what}${createHash('sha256').update(eventId).digest('hex').slice(0, 40)}${index > 0 ? `:${index}` : ''}`;
}

/** Whether the event is the reaction's: its stream prefix, types and filter. */
export function matches(reaction: Reaction, event: EventEnvelope): boolean {
  const { types, streamPrefix, filter } = reaction.on;
  if (streamPrefix !== undefined && !event.streamId.startsWith(streamPrefix)) return false;
  if (types !== undefined && !types.includes(event.type)) return false;
  return filter ? filter(event) === true : true;
}

/** `act`'s answer as a list of actions, or a ValidationError saying what is wrong with it. */
export function actionsOf(reaction: string, result: unknown): ReactionAction[] {
  if (result === undefined || result === null) return [];
  const list = Array.isArray(result) ? result : [result];
  list.forEach((a, i) => {
    const where = list.length > 1 ? `action ${i}` : 'the action';
    const problem = problemOf(a);
    if (problem)
      throw new ValidationError(
        `reaction "${reaction}" answered with an invalid action: ${where} ${problem}`,
        [],
        'answer { start, input }, { signal, name, payload }, { cancel }, { rollback }, a list of them, or nothing',
      );
  });
  return list as ReactionAction[];
}

function problemOf(a: unknown): string | undefined {
  if (typeof a !== 'object' || a === null) return 'is not an object';
  const o = a as Record<string, unknown>;
  // A signal may carry `start` (signal-with-start); otherwise one kind per action.
  const kinds = ['signal', 'cancel', 'rollback'].filter((k) => k in o);
  if (kinds.length > 1 || (kinds.length === 0 && !('start' in o)) || (kinds.length === 1 && kinds[0] !== 'signal' && 'start' in o))
    return 'must have exactly one of start, signal, cancel, rollback';
  const isWorkflowRef = (w: unknown) =>
    (typeof w === 'string' && w !== '') || (typeof w === 'object' && w !== null && typeof (w as Workflow).name === 'string');
  if (kinds.length === 0) {
    if (!isWorkflowRef(o.start)) return 'must name a workflow to start (its name, or the workflow)';
    if (o.runId !== undefined && (typeof o.runId !== 'string' || !RUN_ID.test(o.runId))) return 'has an invalid runId';
    return undefined;
  }
  const target = o.signal ?? o.cancel ?? o.rollback;
  if (typeof target !== 'string' || !RUN_ID.test(target)) return 'must name the run (its id)';
  if ('signal' in o) {
    if (typeof o.name !== 'string' || o.name === '') return 'needs the signal name';
    const start = o.start as { workflow?: unknown } | undefined;
    if (start !== undefined && (typeof start !== 'object' || start === null || !isWorkflowRef(start.workflow)))
      return 'has a start that must be { workflow, input }';
  }
  return undefined;
}
