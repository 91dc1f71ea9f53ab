import type { Json } from '../../events/envelope.js';
import { ValidationError } from '../../events/errors.js';
import { RunConflictError, RunNotFoundError, RunStateError, UnknownWorkflowError } from '../errors.js';
import { streamOf } from '../run-log.js';
import type { Runtime } from '../runtime.js';
import { mailboxOf, postSignal } from '../signals.js';
import { WorkflowVersionNotFoundError } from '../versioning.js';
import { keyOf, type ReactionAction } from './definition.js';

/** What one action came to. `refused`: the run could not take it (ended, or taken by another start); the reaction goes on. */
export type ActionOutcome =
  | { kind: 'started'; runId: string }
  | { kind: 'signalled'; runId: string; name: string; started: boolean }
  | { kind: 'requested'; runId: string; request: 'cancel' | 'rollback' }
  | { kind: 'refused'; runId: string; reason: string };

/** An error no retry can fix (an unknown workflow, input its schema refuses, an invalid answer): the reaction parks at once. */
export function isPermanent(error: unknown): boolean {
  return error instanceof ValidationError || error instanceof UnknownWorkflowError || error instanceof WorkflowVersionNotFoundError;
}

/**
 * Carries out one action of a reaction for an event, under its key, so that
 * doing it again (the event delivered again after a crash) does nothing more:
 * a start joins the run it started (its id is the key), a signal is sent once
 * (its id is the key), a cancel or rollback already carried out is refused by
 * the run's state. Requests go to the run's driver without waiting for it.
 */
export async function carryOut(runtime: Runtime, reaction: string, key: string, action: ReactionAction): Promise<ActionOutcome> {
  const actor = `reaction:${reaction}`;
  if ('signal' in action) return signal(runtime, actor, key, action);
  if ('cancel' in action) {
    return request(action.cancel, 'cancel', () =>
      runtime.cancel(action.cancel, action.reason ?? `cancelled by reaction ${reaction}`, { detach: true, actor }),
    );
  }
  if ('rollback' in action) {
    return request(action.rollback, 'rollback', () =>
      runtime.rollback(
        action.rollback,
        { to: action.to ?? 'start', reason: action.reason ?? `rolled back by reaction ${reaction}` },
        { detach: true, actor },
      ),
    );
  }
  const runId = action.runId ?? key;
  try {
    await runtime.start(action.start, action.input ?? null, { runId, detach: true });
    return { kind: 'started', runId };
  } catch (error) {
    // The id is this event's (derived) or the caller's: a conflict means another start took it first.
    if (error instanceof RunConflictError) return { kind: 'refused', runId, reason: error.message };
    throw error;
  }
}

async function signal(
  runtime: Runtime,
  actor: string,
  key: string,
  action: Extract<ReactionAction, { signal: string }>,
): Promise<ActionOutcome> {
  const runId = action.signal;
  const payload = action.payload === undefined ? null : action.payload;
  try {
    await runtime.signal(runId, action.name, payload, { id: key, actor, detach: true });
    return { kind: 'signalled', runId, name: action.name, started: false };
  } catch (error) {
    if (error instanceof RunNotFoundError) {
      // Kept in the mailbox for the run started now (signal-with-start) or later under that id.
      await postSignal(runtime.store, runId, { name: action.name, payload: payload as Json, actor, id: key });
      if (!action.start) return { kind: 'signalled', runId, name: action.name, started: false };
      try {
        await runtime.start(action.start.workflow, action.start.input ?? null, { runId, detach: true });
      } catch (startError) {
        // Started meanwhile by someone else: the signal waits in its mailbox all the same.
        if (!(startError instanceof RunConflictError)) throw startError;
      }
      return { kind: 'signalled', runId, name: action.name, started: true };
    }
    if (error instanceof RunStateError) {
      // The run ended: after this very signal (delivered before a crash), or before it ever came.
      const mailbox = await runtime.store.read(mailboxOf(runId));
      if (mailbox.some((e) => e.id === `${mailboxOf(runId)}:${key}`))
        return { kind: 'signalled', runId, name: action.name, started: false };
      return { kind: 'refused', runId, reason: error.message };
    }
    throw error;
  }
}

async function request(runId: string, kind: 'cancel' | 'rollback', ask: () => Promise<unknown>): Promise<ActionOutcome> {
  try {
    await ask();
    return { kind: 'requested', runId, request: kind };
  } catch (error) {
    if (error instanceof RunStateError || error instanceof RunNotFoundError) return { kind: 'refused', runId, reason: error.message };
    throw error;
  }
}

/** The runs a reaction started for an event under its derived ids (what 'cancel' and 'rollback' undo). */
export async function startedFor(runtime: Runtime, reaction: string, eventId: string): Promise<string[]> {
  const first = keyOf(reaction, eventId, 0);
  const streams = await runtime.store.listStreams({ prefix: streamOf(first), limit: 1000 });
  return streams.map((s) => s.streamId.slice(streamOf('').length)).filter((id) => id === first || /^:\d+$/.test(id.slice(first.length)));
}
