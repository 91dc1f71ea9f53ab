import { canonicalJson } from '../events/canonical.js';
import type { EventEnvelope, Json } from '../events/envelope.js';
import { RewindError } from '../events/errors.js';
import type { EventStore } from '../store/types.js';
import type { MailboxSignal } from './context.js';
import { RunStateError } from './errors.js';
import { type NewRunEvent, type RollbackAfter, RunEvents, SIGNAL_SENT, type SignalSentData } from './events.js';
import { type RunStatus, statusAfter } from './journal.js';
import { blockedStep, checkIrreversible, type RollbackRequest, resolveTarget } from './rollback/commands.js';

// A run's inbox: the stream `signals-<runId>`, where anyone may append
// without touching the run's own stream (whose driver expects its version).
// It holds the signals sent to the run and the operators' requests: cancel,
// rollback, retry a compensation, resolve one by hand. Whoever drives the run
// (holds its lease) carries a request out at its next safe point, writing the
// request's effect to the run's stream and RequestHandled to the inbox in one
// append: a request is carried out once, whoever crashes when.

export function inboxOf(runId: string): string {
  return `signals-${runId}`;
}

export const RUN_REQUESTED = 'RunRequested';
export const REQUEST_HANDLED = 'RequestHandled';

/** What an operator asks of a run: each is carried out by the run's driver. */
export type RunRequestData =
  | { kind: 'cancel'; reason: string }
  | {
      kind: 'rollback';
      to: RollbackRequest['to'];
      reason: string;
      after: RollbackAfter;
      past?: 'irreversible';
      /** The target as the caller resolved it, at the run's version `at`: the driver reuses it while the run is still there. */
      resolved?: { at: number; targetVersion: number; label: string };
    }
  | { kind: 'retry'; note?: string }
  | { kind: 'resolve'; note: string };

export type RunRequestKind = RunRequestData['kind'];

export interface RequestHandledData {
  /** The RunRequested event's id. */
  request: string;
  outcome: 'done' | 'refused';
  /** Why it was refused: the run had moved on since the request was checked. */
  error?: { code: string; message: string };
}

export interface PendingRequest {
  id: string;
  data: RunRequestData;
  actor?: string;
}

/** The inbox read once: its signals, the requests not handled yet (oldest first), the outcomes of those handled, and its version. */
export interface Inbox {
  signals: MailboxSignal[];
  /** Every request, handled or not, oldest first. */
  requests: PendingRequest[];
  pending: PendingRequest[];
  handled: Map<string, RequestHandledData>;
  version: number;
}

export function readInboxEvents(events: EventEnvelope[]): Inbox {
  const signals: MailboxSignal[] = [];
  const requests: PendingRequest[] = [];
  const handled = new Map<string, RequestHandledData>();
  for (const e of events) {
    if (e.type === SIGNAL_SENT) {
      const { name, payload } = e.data as SignalSentData;
      signals.push({ id: e.id, name, payload, sentAt: e.recordedAt, ...(e.metadata.actor ? { actor: e.metadata.actor } : {}) });
    } else if (e.type === RUN_REQUESTED) {
      requests.push({ id: e.id, data: e.data as RunRequestData, ...(e.metadata.actor ? { actor: e.metadata.actor } : {}) });
    } else if (e.type === REQUEST_HANDLED) {
      const data = e.data as RequestHandledData;
      handled.set(data.request, data);
    }
  }
  return { signals, requests, pending: requests.filter((r) => !handled.has(r.id)), handled, version: events.at(-1)?.version ?? 0 };
}

export async function readInbox(store: EventStore, runId: string): Promise<Inbox> {
  return readInboxEvents(await store.read(inboxOf(runId)));
}

/** Two requests asking the same (a rollback's target found by either caller aside; who asks aside). */
export function sameRequest(a: RunRequestData, b: RunRequestData): boolean {
  const { resolved: _a, ...left } = a as RunRequestData & { resolved?: unknown };
  const { resolved: _b, ...right } = b as RunRequestData & { resolved?: unknown };
  return canonicalJson(left as Json) === canonicalJson(right as Json);
}

/** Appends a request to the run's inbox; returns its id. */
export async function postRequest(store: EventStore, runId: string, data: RunRequestData, actor?: string): Promise<string> {
  const result = await store.append(
    inboxOf(runId),
    [{ type: RUN_REQUESTED, data: data as unknown as Json, ...(actor ? { metadata: { actor } } : {}) }],
    { expectedVersion: 'any' },
  );
  return (result.events[0] as EventEnvelope).id;
}

/** Where each request may be made, and what to say when it may not. */
const RULES: Record<RunRequestKind, { allowed: readonly RunStatus[]; wanted: string; hint: (status: RunStatus) => string }> = {
  cancel: {
    allowed: ['running', 'waiting', 'rolled_back'],
    wanted: 'cancel',
    hint: (status) =>
      status === 'rolling_back' || status === 'needs_attention'
        ? 'a rollback in progress must finish first (retryCompensation / resolveByHand)'
        : 'it has ended: there is nothing left to cancel',
  },
  rollback: {
    allowed: ['running', 'waiting', 'rolled_back', 'completed', 'failed'],
    wanted: 'roll back',
    hint: (status) => (status === 'cancelled' ? 'a cancelled run stays as it is' : 'resume or resolve the rollback in progress first'),
  },
  retry: { allowed: ['needs_attention'], wanted: 'retry a compensation', hint: () => 'only a run that needs attention has one to retry' },
  resolve: {
    allowed: ['needs_attention'],
    wanted: 'resolve by hand',
    hint: () => 'only a run that needs attention has something to resolve',
  },
};

/**
 * What a request writes to the run's stream when the run ends at `tail`, or
 * the typed error that refuses it there. Asked twice: by the caller, so a
 * request that cannot be carried out is refused at once with nothing written,
 * and by the driver at its safe point, where the run may have moved on.
 */
export async function effectOf(store: EventStore, runId: string, tail: EventEnvelope, request: RunRequestData): Promise<NewRunEvent[]> {
  const rule = RULES[request.kind];
  const status = statusAfter(tail);
  if (!rule.allowed.includes(status)) throw new RunStateError(runId, status, rule.wanted, rule.hint(status));
  switch (request.kind) {
    case 'cancel':
      return [{ type: RunEvents.RunCancelled, data: { reason: request.reason } }];
    case 'rollback': {
      const { resolved } = request;
      const { version: targetVersion, label } =
        resolved?.at === tail.version
          ? { version: resolved.targetVersion, label: resolved.label }
          : await resolveTarget(store, runId, tail, request.to);
      if (resolved?.at !== tail.version) await checkIrreversible(store, runId, targetVersion, tail, request.past);
      const past = request.past ? { past: request.past } : {};
      const data = { targetVersion, label, reason: request.reason, trigger: { kind: 'requested' as const }, after: request.after, ...past };
      return [{ type: RunEvents.RollbackRequested, data }];
    }
    case 'retry':
      return [
        { type: RunEvents.CompensationRetried, data: { stepKey: blockedStep(tail), ...(request.note ? { note: request.note } : {}) } },
      ];
    case 'resolve':
      return [{ type: RunEvents.ResolvedByHand, data: { stepKey: blockedStep(tail), note: request.note } }];
  }
}

/** The outcome to record for a request the driver could not carry out: only Rewind's own typed refusals; anything else is thrown. */
export function refusalOf(request: PendingRequest, error: unknown): RequestHandledData {
  if (!(error instanceof RewindError)) throw error;
  return { request: request.id, outcome: 'refused', error: { code: error.code, message: error.message } };
}
