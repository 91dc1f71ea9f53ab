import type { Json } from '../events/envelope.js';
import type { EventStore } from '../store/types.js';
import { SIGNAL_SENT, type SignalSentData } from './events.js';
import { inboxOf } from './requests.js';

// A run's mailbox: the stream `signals-<runId>`, one SignalSent per signal,
// appended whether or not the run waits yet (a signal sent early is kept for
// it) and without touching the run's own stream (a driver's expected version
// is left alone). The run records which signal answered which wait in its
// own stream (SignalReceived), so each signal is used once.

/** The run's inbox, where signals wait for the run (requests.ts). */
export const mailboxOf = inboxOf;

/**
 * Appends a signal to the run's mailbox. The same `id` twice (for this run) is
 * one signal: the event's id is made of the run's and it, and the store
 * returns the first append for a repeated id.
 */
export async function postSignal(
  store: EventStore,
  runId: string,
  signal: { name: string; payload: Json; actor?: string; id?: string },
): Promise<string> {
  const data: SignalSentData = { name: signal.name, payload: signal.payload };
  const result = await store.append(
    mailboxOf(runId),
    [
      {
        ...(signal.id ? { id: `${mailboxOf(runId)}:${signal.id}` } : {}),
        type: SIGNAL_SENT,
        data,
        ...(signal.actor ? { metadata: { actor: signal.actor } } : {}),
      },
    ],
    { expectedVersion: 'any' },
  );
  return (result.events[0] as { id: string }).id;
}
