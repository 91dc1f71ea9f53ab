import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/events/canonical.js';
import type { EventEnvelope } from '../../src/events/envelope.js';
import {
  asRunEvent,
  type DecideOptions,
  type NewRunEvent,
  nextAction,
  type ProtocolAction,
  RunEvents,
  type StepRef,
} from '../../src/runtime/index.js';
import { Closures } from '../../src/runtime/rollback/closures.js';
import { openStore } from '../../src/store/open.js';
import type { EventStore } from '../../src/store/types.js';
import { tempDir } from '../support/temp.js';
import { operate } from '../torture/harness.js';
import { Ledger } from '../torture/ledger.js';
import { scenarios } from '../torture/scenarios.js';

// The rollback protocol's decider as a specification: given these events,
// the next action is this.

const RUN = 'r';
const T0 = 1_700_000_000_000;

/** A run's stream from runtime events, versions from 1. */
function given(...events: NewRunEvent[]): EventEnvelope[] {
  return events.map((e, i) => ({
    id: `e${i + 1}`,
    streamId: `run-${RUN}`,
    version: i + 1,
    position: i + 1,
    type: e.type,
    schemaVersion: 1,
    data: e.data,
    metadata: {},
    recordedAt: new Date(T0 + i).toISOString(),
    hash: '',
  }));
}

/** Hooks as the events journal them, no declared ones. */
const options = (o: Partial<DecideOptions> = {}): DecideOptions => ({
  hooks: (s) => (s.undo ? { compensate: s.undo.includes('compensate'), verify: s.undo.includes('verify') } : undefined),
  compensationRetry: { attempts: 3 },
  ...o,
});

const started: NewRunEvent = { type: 'RunStarted', data: { runId: RUN, workflow: 'w', workflowVersion: '1', input: null } };
const checkpoint = (seq: number, label = 'cp'): NewRunEvent => ({
  type: 'Checkpoint',
  data: { seq, label, state: 0, index: { [label]: 2 }, rollbacks: [] },
});
const key = (seq: number, name: string) => `${RUN}:${seq}:${name}`;
/** `undo: null`: an event of an older build, which did not journal the hooks. */
const stepStarted = (seq: number, name: string, undo: Array<'compensate' | 'verify'> | null = ['compensate']): NewRunEvent => ({
  type: 'StepStarted',
  data: { seq, name, idempotencyKey: key(seq, name), attempt: 1, ...(undo ? { undo } : {}) },
});
const stepCompleted = (seq: number, name: string, undo: Array<'compensate' | 'verify'> = ['compensate']): NewRunEvent => ({
  type: 'StepCompleted',
  data: { seq, name, idempotencyKey: key(seq, name), result: name, undo },
});
const request = (after: 'retry' | 'fail' | 'stop' = 'retry', extra: { coordinator?: string } = {}): NewRunEvent => ({
  type: 'RollbackRequested',
  data: {
    targetVersion: 2,
    label: 'cp',
    reason: 'hotel full',
    trigger: { kind: 'step-failed', step: 'hotel', error: { name: 'Error', message: 'hotel full' } },
    after,
    ...extra,
  },
});
const compStarted = (seq: number, name: string, attempt = 1): NewRunEvent => ({
  type: 'CompensationStarted',
  data: { step: name, stepKey: key(seq, name), idempotencyKey: `${key(seq, name)}:undo`, attempt },
});
const compFailed = (seq: number, name: string, attempt: number, final: boolean, retryAt?: number): NewRunEvent => ({
  type: 'CompensationFailed',
  data: {
    step: name,
    stepKey: key(seq, name),
    attempt,
    error: { name: 'Error', message: 'refund API down' },
    final,
    ...(retryAt ? { retryAt } : {}),
  },
});
const compDone = (seq: number, name: string): NewRunEvent => ({
  type: 'CompensationCompleted',
  data: { step: name, stepKey: key(seq, name) },
});
const ref = (seq: number, name: string, undo: Array<'compensate' | 'verify'> = ['compensate']): StepRef => ({
  seq,
  name,
  key: key(seq, name),
  undo,
});

/** cp at v2, flight and card completed, the hotel failed, a rollback to cp requested (v7). */
const trip = (after: 'retry' | 'fail' | 'stop' = 'retry') => [
  started,
  checkpoint(0),
  stepStarted(1, 'flight'),
  stepCompleted(1, 'flight'),
  stepStarted(2, 'card'),
  stepCompleted(2, 'card'),
  request(after),
];

describe('the rollback decider: given these events, the next action is', () => {
  it('forward, for a run with no rollback pending', () => {
    expect(nextAction(given(started), options())).toEqual({ kind: 'forward' });
    expect(nextAction(given(started, stepStarted(0, 'a')), options())).toEqual({ kind: 'forward' });
  });

  it('rest, for a finished run; a rollback that stopped rests until resumed', () => {
    expect(nextAction(given(started, { type: 'RunCompleted', data: {} }), options())).toEqual({ kind: 'rest', why: 'completed' });
    expect(nextAction(given(started, { type: 'RunCancelled', data: { reason: 'x' } }), options())).toEqual({
      kind: 'rest',
      why: 'cancelled',
    });
    const stopped = given(...trip('stop'), compStarted(2, 'card'), compDone(2, 'card'), compStarted(1, 'flight'), compDone(1, 'flight'));
    const finish = nextAction(stopped, options());
    expect(finish.kind).toBe('finish');
    const marker = finish.kind === 'finish' ? finish.marker : undefined;
    const rolledBack = given(
      ...trip('stop'),
      compStarted(2, 'card'),
      compDone(2, 'card'),
      compStarted(1, 'flight'),
      compDone(1, 'flight'),
      {
        type: 'RolledBack',
        data: marker as NonNullable<typeof marker>,
      },
    );
    expect(nextAction(rolledBack, options())).toEqual({ kind: 'rest', why: 'stopped' });
    expect(nextAction(rolledBack, options({ resume: true }))).toEqual({ kind: 'forward' });
  });

  it('compensate the newest completed step first, attempt 1', () => {
    expect(nextAction(given(...trip()), options())).toEqual({
      kind: 'compensate',
      step: ref(2, 'card'),
      result: 'card',
      attempt: 1,
      reopen: false,
      retry: { attempts: 3 },
    });
  });

  it('re-run an attempt that started and never ended, under the same attempt (no new start)', () => {
    expect(nextAction(given(...trip(), compStarted(2, 'card')), options())).toMatchObject({
      kind: 'compensate',
      step: { name: 'card' },
      attempt: 1,
      reopen: true,
    });
  });

  it('retry a failed compensation at its journaled time, then the next step once it is done', () => {
    expect(nextAction(given(...trip(), compStarted(2, 'card'), compFailed(2, 'card', 1, false, T0 + 500)), options())).toMatchObject({
      kind: 'compensate',
      step: { name: 'card' },
      attempt: 2,
      reopen: false,
      notBefore: T0 + 500,
    });
    expect(nextAction(given(...trip(), compStarted(2, 'card'), compDone(2, 'card')), options())).toMatchObject({
      kind: 'compensate',
      step: { name: 'flight' },
      attempt: 1,
    });
  });

  it('ask for attention after a final failure written without it (a log of an older build), then rest', () => {
    const failed = [...trip(), compStarted(2, 'card', 3), compFailed(2, 'card', 3, true)];
    expect(nextAction(given(...failed), options())).toEqual({
      kind: 'attention',
      attention: { step: 'card', stepKey: key(2, 'card'), stage: 'compensation', error: { name: 'Error', message: 'refund API down' } },
    });
    const asked: NewRunEvent = {
      type: 'NeedsAttention',
      data: { step: 'card', stepKey: key(2, 'card'), stage: 'compensation', error: { name: 'Error', message: 'refund API down' } },
    };
    expect(nextAction(given(...failed, asked), options())).toEqual({ kind: 'rest', why: 'attention' });
    // An operator's retry gives a fresh budget under the same key; one resolved by hand counts as undone.
    const retried: NewRunEvent = { type: 'CompensationRetried', data: { stepKey: key(2, 'card') } };
    expect(nextAction(given(...failed, asked, retried), options())).toMatchObject({
      kind: 'compensate',
      step: { name: 'card' },
      attempt: 1,
    });
    const byHand: NewRunEvent = { type: 'ResolvedByHand', data: { stepKey: key(2, 'card'), note: 'refunded in the portal' } };
    expect(nextAction(given(...failed, asked, byHand), options())).toMatchObject({ kind: 'compensate', step: { name: 'flight' } });
  });

  it('finish: the marker, with RunFailed in the same action when the request says after fail', () => {
    const done = [...trip('fail'), compStarted(2, 'card'), compDone(2, 'card'), compStarted(1, 'flight'), compDone(1, 'flight')];
    expect(nextAction(given(...done), options())).toEqual({
      kind: 'finish',
      marker: {
        requestVersion: 7,
        targetVersion: 2,
        label: 'cp',
        reason: 'hotel full',
        trigger: { kind: 'step-failed', step: 'hotel', error: { name: 'Error', message: 'hotel full' } },
        after: 'fail',
        index: { cp: 2 },
      },
      fail: { name: 'Error', message: 'hotel full' },
    });
  });

  it('fail, for a RolledBack after fail recorded without its RunFailed (a log of an older build)', () => {
    const done = [...trip('fail'), compStarted(2, 'card'), compDone(2, 'card'), compStarted(1, 'flight'), compDone(1, 'flight')];
    const finish = nextAction(given(...done), options());
    if (finish.kind !== 'finish') throw new Error('expected finish');
    expect(nextAction(given(...done, { type: 'RolledBack', data: finish.marker }), options())).toEqual({
      kind: 'fail',
      error: { name: 'Error', message: 'hotel full' },
    });
  });

  it('settle a step left open by a crash (run it again under its key) before any compensation', () => {
    const open = [started, checkpoint(0), stepStarted(1, 'flight'), stepCompleted(1, 'flight'), stepStarted(2, 'card'), request('stop')];
    expect(nextAction(given(...open), options())).toEqual({ kind: 'settle', step: ref(2, 'card'), attempt: 1, reopen: true });
    const settled: NewRunEvent = {
      type: 'StepCompleted',
      data: { seq: 2, name: 'card', idempotencyKey: key(2, 'card'), result: 'card', undo: ['compensate'], settling: true },
    };
    // Settled, it is the newest completed step: compensated first.
    expect(nextAction(given(...open, settled), options())).toMatchObject({ kind: 'compensate', step: { name: 'card' }, result: 'card' });
    const failed: NewRunEvent = {
      type: 'StepFailed',
      data: {
        seq: 2,
        name: 'card',
        idempotencyKey: key(2, 'card'),
        attempt: 1,
        error: { name: 'Error', message: 'declined' },
        trigger: 'step-failed',
        final: true,
        settling: true,
      },
    };
    // It failed: it had no effect, nothing to undo.
    expect(nextAction(given(...open, failed), options())).toMatchObject({ kind: 'compensate', step: { name: 'flight' } });
  });

  it('leave an open step with no undo hook as it is, named in the marker', () => {
    const open = [started, checkpoint(0), stepStarted(1, 'search', []), request('stop')];
    expect(nextAction(given(...open), options())).toMatchObject({
      kind: 'finish',
      marker: { inDoubt: [{ step: 'search', stepKey: key(1, 'search') }] },
    });
  });

  it('replay, when the events do not say which hooks a step has', () => {
    const legacy = [started, checkpoint(0), stepStarted(1, 'flight', null), request('stop')];
    expect(nextAction(given(...legacy), options())).toEqual({ kind: 'replay', step: { seq: 1, name: 'flight', key: key(1, 'flight') } });
  });

  it('verify after every compensation; a failed check asks for attention', () => {
    const verified = [
      started,
      checkpoint(0),
      stepStarted(1, 'seat', ['compensate', 'verify']),
      stepCompleted(1, 'seat', ['compensate', 'verify']),
      request('stop'),
      compStarted(1, 'seat'),
      compDone(1, 'seat'),
    ];
    expect(nextAction(given(...verified), options())).toEqual({
      kind: 'verify',
      step: ref(1, 'seat', ['compensate', 'verify']),
      result: 'seat',
    });
    const wrong: NewRunEvent = { type: 'Verified', data: { step: 'seat', stepKey: key(1, 'seat'), ok: false } };
    expect(nextAction(given(...verified, wrong), options())).toMatchObject({
      kind: 'attention',
      attention: { stage: 'verify', step: 'seat' },
    });
  });

  it('rest for the coordinator, with the marker it will write, once a group-owned request is carried out', () => {
    const owned = [started, checkpoint(0), stepStarted(1, 'a'), stepCompleted(1, 'a'), request('stop', { coordinator: 'g1' })];
    expect(nextAction(given(...owned), options())).toMatchObject({ kind: 'compensate', step: { name: 'a' } });
    expect(nextAction(given(...owned, compStarted(1, 'a'), compDone(1, 'a')), options())).toMatchObject({
      kind: 'rest',
      why: 'coordinator',
      marker: { requestVersion: 5, targetVersion: 2, after: 'stop' },
    });
  });

  it('parallel steps are undone in the order they completed, not the order they started', () => {
    const parallel = [
      started,
      checkpoint(0),
      stepStarted(1, 'slow'),
      stepStarted(2, 'fast'),
      stepCompleted(2, 'fast'),
      stepCompleted(1, 'slow'),
      request(),
    ];
    expect(nextAction(given(...parallel), options())).toMatchObject({ kind: 'compensate', step: { name: 'slow' } });
  });
});

// Every prefix of recorded runs: record the appends of real runs of every
// crash-test scenario, then check that at each append boundary the decider
// names the action whose events came next.

/** A store that records, per run stream, each append's events as one group. */
function recording(store: EventStore): { store: EventStore; appends: Map<string, EventEnvelope[][]> } {
  const appends = new Map<string, EventEnvelope[][]>();
  const keep = (events: EventEnvelope[]) => {
    const streamId = events[0]?.streamId;
    if (!streamId?.startsWith('run-')) return;
    appends.set(streamId, [...(appends.get(streamId) ?? []), events]);
  };
  const proxy = new Proxy(store, {
    get(target, prop) {
      if (prop === 'append') {
        return async (...args: Parameters<EventStore['append']>) => {
          const result = await target.append(...args);
          keep(result.events);
          return result;
        };
      }
      if (prop === 'appendMany') {
        return async (...args: Parameters<EventStore['appendMany']>) => {
          const results = await target.appendMany(...args);
          for (const result of results) keep(result.events);
          return results;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: proxy, appends };
}

const PROTOCOL = new Set<string>([
  RunEvents.CompensationStarted,
  RunEvents.CompensationCompleted,
  RunEvents.CompensationFailed,
  RunEvents.Verified,
  RunEvents.NeedsAttention,
  RunEvents.RolledBack,
]);
const OPERATOR = new Set<string>([RunEvents.CompensationRetried, RunEvents.ResolvedByHand, RunEvents.RunCancelled]);

/** Whether `next` (the events of the append that followed) is what `action` writes. */
function explains(action: ProtocolAction, next: EventEnvelope[]): boolean {
  const [first] = next;
  const e = first && asRunEvent(first);
  const settling = (e?.data as { settling?: boolean } | undefined)?.settling === true;
  if (!first) return false;
  // An operator may act on any run at rest; the decider is asked again after.
  if (OPERATOR.has(first.type) || (e?.type === RunEvents.RollbackRequested && e.data.trigger.kind === 'requested'))
    return action.kind === 'rest' || action.kind === 'forward';
  switch (action.kind) {
    case 'forward':
      return !PROTOCOL.has(first.type) && !settling;
    case 'rest':
      // A request owned by a coordinator: it writes exactly the marker the decider named.
      return action.why === 'coordinator' && e?.type === RunEvents.RolledBack && canonicalJson(e.data) === canonicalJson(action.marker);
    case 'settle':
      return (
        settling &&
        (e?.type === (action.reopen ? RunEvents.StepCompleted : RunEvents.StepStarted) ||
          (action.reopen && e?.type === RunEvents.StepFailed))
      );
    case 'compensate':
      if (action.reopen)
        return (
          (e?.type === RunEvents.CompensationCompleted || e?.type === RunEvents.CompensationFailed) && e.data.stepKey === action.step.key
        );
      return e?.type === RunEvents.CompensationStarted && e.data.stepKey === action.step.key && e.data.attempt === action.attempt;
    case 'verify':
      return e?.type === RunEvents.Verified && e.data.stepKey === action.step.key;
    case 'attention':
      return e?.type === RunEvents.NeedsAttention;
    case 'finish':
      return e?.type === RunEvents.RolledBack && next.length === (action.fail ? 2 : 1);
    case 'fail':
      return e?.type === RunEvents.RunFailed;
    case 'replay':
      return false;
  }
}

describe('the rollback decider over every prefix of recorded runs', () => {
  it.each(scenarios.map((s) => [`${s.name} (${s.hooks})`, s] as const))('%s', async (_title, sc) => {
    const dir = tempDir('rewind-decide-');
    const ledger = new Ledger(join(dir, 'ledger.db'));
    const { store, appends } = recording(await openStore('memory:'));
    await operate(store, { ledger, dir }, sc, 'rec');
    // Hooks as the events journal them, plus the workflow's declared ones.
    const hooks = new Closures(sc.workflow({ ledger, dir }));
    const misses: string[] = [];
    expect([...appends.keys()].length).toBe(sc.group ? 3 : 1);
    for (const [streamId, groups] of appends) {
      const events: EventEnvelope[] = [];
      const decide = () => nextAction(events, { hooks: (s) => hooks.hooks(s), compensationRetry: { attempts: 2 } });
      for (const [i, next] of groups.entries()) {
        if (events.length > 0) {
          const action = decide();
          // A stopped run goes forward again only when an operator resumes it; a waiting one when a signal comes.
          const resumed =
            action.kind === 'rest' && (action.why === 'stopped' || action.why === 'waiting') && explains({ kind: 'forward' }, next);
          if (!resumed && !explains(action, next))
            misses.push(`${streamId} after append ${i}: decided ${JSON.stringify(action)}, then came ${next.map((e) => e.type)}`);
        }
        events.push(...next);
      }
      expect(decide().kind, streamId).toBe('rest');
    }
    ledger.close();
    expect(misses).toEqual([]);
  });
});
