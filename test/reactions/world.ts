import { randomUUID } from 'node:crypto';
import { defineReaction, defineWorkflow, type Reaction, type Workflow } from '../../src/runtime/index.js';
import type { CallLedger } from '../concurrency/calls.js';

// The world of the reactions torture: events that start a run each (Order),
// events that signal one of a few mailbox runs, starting it if need be (Ping),
// and noise; every call of a step function counted in a ledger that
// deduplicates nothing.

export const STREAMS = 200;
export const BOXES = 50;

/** Each box gets one ping in every 20 × BOXES events. */
export function pingsPerBox(events: number): number {
  return events / 20 / BOXES;
}

export type SourceEvent =
  | { type: 'Order'; data: { order: number } }
  | { type: 'Ping'; data: { box: number; n: number } }
  | { type: 'Noise'; data: { i: number } };

/** The i-th event the test appends, and its stream: one in 10 an order, one in 20 a ping, the rest noise. */
export function sourceEvent(i: number): { streamId: string; event: SourceEvent } {
  const streamId = `src-${i % STREAMS}`;
  if (i % 10 === 0) return { streamId, event: { type: 'Order', data: { order: i } } };
  if (i % 20 === 5) return { streamId, event: { type: 'Ping', data: { box: Math.floor(i / 20) % BOXES, n: i } } };
  return { streamId, event: { type: 'Noise', data: { i } } };
}

export function workflows(ledger: CallLedger): Workflow[] {
  const fulfil = defineWorkflow({
    name: 'fulfil',
    initialState: null,
    apply: (s: null) => s,
    run: async (ctx, input: { order: number }) =>
      ctx.step('ship', async (io) => {
        ledger.call('step', io.idempotencyKey, io.attempt);
        return input.order;
      }),
  });
  const mailbox = defineWorkflow({
    name: 'mailbox',
    initialState: null,
    apply: (s: null) => s,
    run: async (ctx, input: { box: number; expected: number }) => {
      const got: number[] = [];
      for (let k = 0; k < input.expected; k++) got.push((await ctx.waitFor<{ n: number }>('ping')).n);
      return got.sort((a, b) => a - b);
    },
  });
  return [fulfil, mailbox];
}

/**
 * 'safe': the reactions as meant, their run ids derived from the event.
 * 'unsafe' (the mutation): each start under a fresh id, so an event acted on
 * again after a crash starts a second run.
 */
export function reactions(mode: 'safe' | 'unsafe', events: number): Reaction[] {
  return [
    defineReaction({
      name: 'orders',
      on: { types: ['Order'] },
      act: (e) => ({
        start: 'fulfil',
        input: { order: (e.data as { order: number }).order },
        ...(mode === 'unsafe' ? { runId: `fulfil-${randomUUID()}` } : {}),
      }),
    }),
    defineReaction({
      name: 'pings',
      on: { types: ['Ping'] },
      act: (e) => {
        const { box, n } = e.data as { box: number; n: number };
        return {
          signal: `box-${box}`,
          name: 'ping',
          payload: { n },
          start: { workflow: 'mailbox', input: { box, expected: pingsPerBox(events) } },
        };
      },
    }),
  ];
}
