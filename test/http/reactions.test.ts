import { afterEach, describe, expect, it } from 'vitest';
import type { EventEnvelope } from '../../src/events/envelope.js';
import { createRuntime, defineReaction, ReactionEvents } from '../../src/runtime/index.js';
import { ADMIN, backends, type Harness, READER, startHarness } from './helpers.js';

let h: Harness;
afterEach(() => h?.close());

const CONTROL = '$rewind-reaction-mailer';

/** A reaction that sends a mail per Mail event, and cannot reach "nobody" while the mail server is down. */
function mailer(sent: string[], server: { up: boolean }) {
  return defineReaction({
    name: 'mailer',
    on: { types: ['Mail'] },
    retry: { attempts: 1, initialDelayMs: 1 },
    act: (e) => {
      const { to } = e.data as { to: string };
      if (to === 'nobody' && !server.up) throw new Error('the mail server said no');
      sent.push(to);
    },
  });
}

describe.each(backends)('reactions over HTTP on $name', (backend) => {
  it('shows a parked reaction with its event and error; an admin skips it and it goes on; a second skip is refused with nothing written', async () => {
    const sent: string[] = [];
    h = await startHarness(backend, {
      runtime: (store) => createRuntime({ store, reactions: [mailer(sent, { up: false })] }),
      tokens: { admin: ADMIN, read: READER },
    });
    const { events } = await h.store.append('mails', [
      { type: 'Mail', data: { to: 'nobody' } },
      { type: 'Mail', data: { to: 'ada' } },
    ]);
    const bad = events[0] as EventEnvelope;
    const get = async (path: string) => (await h.call(path, { token: READER })).json();
    await expect.poll(async () => (await get('/reactions/mailer')).state).toBe('parked');

    const head = await h.store.headPosition();
    const { reactions } = await get('/reactions');
    expect(reactions).toEqual([
      {
        name: 'mailer',
        state: 'parked',
        position: bad.position - 1,
        head,
        lagEvents: head - bad.position + 1,
        parked: {
          position: bad.position,
          eventId: bad.id,
          streamId: 'mails',
          type: 'Mail',
          error: { name: 'Error', message: 'the mail server said no' },
          attempts: 1,
          at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        },
        skipped: 0,
        heldBy: { owner: expect.any(String), until: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
      },
    ]);
    expect(await get('/reactions/mailer')).toEqual(reactions[0]);
    expect(sent).toEqual([]);
    // Prometheus sees it too: an alert on rewind_reaction_parked fires.
    const metrics = await (await h.call('/metrics', { token: READER })).text();
    expect(metrics).toContain('rewind_reaction_parked{reaction="mailer"} 1');
    expect(metrics).toContain(`rewind_reaction_lag_events{reaction="mailer"} ${head - bad.position + 1}`);

    // A read token may look, not skip.
    const byReader = await h.call('/reactions/mailer/skip', { json: {}, token: READER });
    expect(byReader.status).toBe(403);

    const skipped = await h.call('/reactions/mailer/skip', { json: { reason: 'no such mailbox', actor: 'ops' }, token: ADMIN });
    expect(skipped.status).toBe(200);
    expect(await skipped.json()).toMatchObject({ name: 'mailer', state: 'ok', parked: null, skipped: 1 });
    const control = await h.store.read(CONTROL);
    expect(control.map((e) => e.type)).toEqual([
      ReactionEvents.ReactionStarted,
      ReactionEvents.ReactionParked,
      ReactionEvents.ReactionSkipped,
    ]);
    expect(control[2]?.data).toEqual({ position: bad.position, actor: 'ops', reason: 'no such mailbox' });

    // It goes on past the skipped event: the next one is acted on, and it catches up with the log (the skip included).
    const headAfterSkip = await h.store.headPosition();
    expect(headAfterSkip).toBe(head + 1);
    await expect.poll(async () => (await get('/reactions/mailer')).position).toBe(headAfterSkip);
    expect(sent).toEqual(['ada']);
    expect(await get('/reactions/mailer')).toMatchObject({ state: 'ok', lagEvents: 0, parked: null, skipped: 1 });

    // Not parked any more: nothing to skip or retry, and nothing is written.
    const before = await h.store.headPosition();
    for (const how of ['skip', 'retry']) {
      const again = await h.call(`/reactions/mailer/${how}`, { json: {}, token: ADMIN });
      expect(again.status).toBe(409);
      expect((await again.json()).error).toEqual({
        code: 'REACTION_STATE',
        message: `reaction "mailer" is not parked on an event; cannot ${how} an event`,
        hint: 'see its state with `rewind reactions`',
      });
    }
    expect(await h.store.headPosition()).toBe(before);
    expect(await h.store.streamVersion(CONTROL)).toBe(3);
  });
});

describe('reactions over HTTP', () => {
  it('retries a parked reaction once the cause is fixed: the event is acted on, and the retry is recorded', async () => {
    const sent: string[] = [];
    const server = { up: false };
    h = await startHarness(undefined, { runtime: (store) => createRuntime({ store, reactions: [mailer(sent, server)] }) });
    const { events } = await h.store.append('mails', [{ type: 'Mail', data: { to: 'nobody' } }]);
    await expect.poll(async () => (await (await h.call('/reactions/mailer')).json()).state).toBe('parked');
    server.up = true;
    // {} when there is nothing to say.
    const retried = await h.call('/reactions/mailer/retry', { json: {} });
    expect(retried.status).toBe(200);
    expect(await retried.json()).toMatchObject({ name: 'mailer', state: 'ok', parked: null, skipped: 0 });
    await expect.poll(() => sent).toEqual(['nobody']);
    const control = await h.store.read(CONTROL);
    expect(control.map((e) => e.type)).toEqual([
      ReactionEvents.ReactionStarted,
      ReactionEvents.ReactionParked,
      ReactionEvents.ReactionRetried,
    ]);
    expect(control[2]?.data).toEqual({ position: (events[0] as EventEnvelope).position });
  });

  it('answers 404 for a reaction that never ran here, and 400 for a body it does not take, writing nothing', async () => {
    h = await startHarness(undefined, {
      runtime: (store) => createRuntime({ store, reactions: [mailer([], { up: false })] }),
    });
    await h.store.append('mails', [{ type: 'Mail', data: { to: 'nobody' } }]);
    await expect.poll(async () => (await (await h.call('/reactions/mailer')).json()).state).toBe('parked');
    const before = await h.store.headPosition();

    for (const answer of [await h.call('/reactions/nope'), await h.call('/reactions/nope/skip', { json: {} })]) {
      expect(answer.status).toBe(404);
      expect((await answer.json()).error).toEqual({
        code: 'REACTION_NOT_FOUND',
        message: 'no reaction named "nope" has run against this log',
        hint: 'known reactions: mailer',
      });
    }

    const refused = async (body: unknown) => {
      const answer = await h.call('/reactions/mailer/skip', { json: body });
      expect(answer.status).toBe(400);
      return (await answer.json()).error;
    };
    expect(await refused({ reason: '  ' })).toMatchObject({ code: 'VALIDATION', issues: [{ field: 'reason' }] });
    expect(await refused({ reason: 7 })).toMatchObject({ code: 'VALIDATION', issues: [{ field: 'reason' }] });
    expect(await refused({ actor: '' })).toMatchObject({ code: 'VALIDATION', issues: [{ field: 'actor' }] });
    expect(await refused({ why: 'typo' })).toMatchObject({ code: 'VALIDATION', issues: [{ field: 'body' }] });
    // Not JSON: refused before anything reads it.
    const text = await h.call('/reactions/mailer/skip', { method: 'POST', body: 'skip it', headers: { 'content-type': 'text/plain' } });
    expect(text.status).toBe(415);

    expect(await h.store.headPosition()).toBe(before);
    expect((await (await h.call('/reactions/mailer')).json()).state).toBe('parked');
  });

  it('lists no reaction when none has run against the log', async () => {
    h = await startHarness();
    expect(await (await h.call('/reactions')).json()).toEqual({ reactions: [] });
  });
});
