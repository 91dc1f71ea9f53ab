// `rewind reactions` reads what the log says of every reaction (no code
// needed); `skip` and `retry` record an operator's word on a parked one, which
// the process running the reaction then follows.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EventEnvelope } from '../../src/events/envelope.js';
import { createRuntime, defineReaction, openStore, ReactionEvents, reactionStatuses } from '../../src/index.js';
import { refusedMailer } from '../support/reactions.js';
import { tempDir } from '../support/temp.js';
import { runCli } from './run-cli.js';

/**
 * A log where `mailer` is parked on the mail to "nobody" (its act threw) and
 * `archiver` has caught up: both ran in a process that has since stopped.
 */
async function parkedLog(): Promise<{ db: string; mail: EventEnvelope }> {
  const db = `sqlite:${join(tempDir('rewind-cli-reactions-'), 'rewind.db')}`;
  const store = await openStore(db);
  const runtime = createRuntime({
    store,
    reactions: [refusedMailer(), defineReaction({ name: 'archiver', on: { types: ['Archive'] }, act: () => undefined })],
  });
  // Both have started (their control streams say from where) before the mail is sent.
  await expect.poll(async () => (await runtime.reactions.status()).length).toBe(2);
  const { events } = await store.append('mails', [{ type: 'Mail', data: { to: 'nobody' } }]);
  await expect.poll(async () => (await runtime.reactions.status()).find((s) => s.name === 'mailer')?.state).toBe('parked');
  await runtime.reactions.settled();
  await runtime.close();
  await store.close();
  return { db, mail: events[0] as EventEnvelope };
}

/** The control stream of `mailer`, read after the CLI has run. */
async function mailerControl(db: string): Promise<EventEnvelope[]> {
  const store = await openStore(db);
  try {
    return await store.read('$rewind-reaction-mailer');
  } finally {
    await store.close();
  }
}

describe('rewind reactions', () => {
  it('prints each reaction with its position, lag and parked event, and exits 1 while one is parked', async () => {
    const { db, mail } = await parkedLog();
    const shown = await runCli(['reactions', '--db', db]);
    expect(shown.code).toBe(1);
    expect(shown.stderr).toBe('');
    // Positions: the two ReactionStarted (1, 2), the mail (3), mailer's ReactionParked (4).
    expect(mail.position).toBe(3);
    expect(shown.stdout.replace(/parked \d+s ago/, 'parked Ns ago')).toBe(
      [
        'reaction  state   position  behind  held by  parked on',
        '────────  ──────  ────────  ──────  ───────  ─────────',
        'archiver  ok      4         0       no one',
        'mailer    parked  2         2       no one   3 (Mail)',
        '',
        `mailer parked Ns ago on event 3 (Mail ${mail.id} of mails) after 1 attempt: the mail server said no`,
        '',
        'fix the cause (or the code) and `rewind reactions retry NAME`, or go past the event: `rewind reactions skip NAME --reason …`',
        '',
      ].join('\n'),
    );
  });

  it('--json prints the statuses as the log has them, and exits 1 while one is parked, as the table does', async () => {
    const { db, mail } = await parkedLog();
    const shown = await runCli(['reactions', '--json', '--db', db]);
    expect(shown.code).toBe(1);
    const statuses = JSON.parse(shown.stdout);
    expect(statuses).toEqual([
      { name: 'archiver', state: 'ok', position: 4, head: 4, lagEvents: 0, parked: null, skipped: 0, heldBy: null },
      {
        name: 'mailer',
        state: 'parked',
        position: 2,
        head: 4,
        lagEvents: 2,
        parked: {
          position: 3,
          eventId: mail.id,
          streamId: 'mails',
          type: 'Mail',
          error: { name: 'Error', message: 'the mail server said no' },
          attempts: 1,
          at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        },
        skipped: 0,
        heldBy: null,
      },
    ]);
    const store = await openStore(db);
    expect(statuses).toEqual(await reactionStatuses(store));
    await store.close();
  });

  it('skip NAME --reason records the skip in the control stream, with who ($USER) and why; the status shows it no longer parked', async () => {
    const { db } = await parkedLog();
    const skipped = await runCli(['reactions', 'skip', 'mailer', '--reason', 'no such mailbox', '--db', db], { env: { USER: 'ops' } });
    expect(skipped).toEqual({ code: 0, stdout: 'skipped reaction mailer at event 3\n', stderr: '' });
    const control = await mailerControl(db);
    expect(control.map((e) => e.type)).toEqual([
      ReactionEvents.ReactionStarted,
      ReactionEvents.ReactionParked,
      ReactionEvents.ReactionSkipped,
    ]);
    expect(control[2]?.data).toEqual({ position: 3, actor: 'ops', reason: 'no such mailbox' });

    // Nothing runs the reaction now: it has not moved, but it is not parked, and exits 0.
    const shown = await runCli(['reactions', '--json', '--db', db]);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)[1]).toMatchObject({ name: 'mailer', state: 'ok', position: 2, parked: null, skipped: 1 });
  });

  it('retry NAME --actor records the retry with who asked', async () => {
    const { db } = await parkedLog();
    const retried = await runCli(['reactions', 'retry', 'mailer', '--actor', 'ana', '--db', db]);
    expect(retried).toEqual({ code: 0, stdout: 'retrying reaction mailer at event 3\n', stderr: '' });
    const control = await mailerControl(db);
    expect(control.at(-1)).toMatchObject({ type: ReactionEvents.ReactionRetried, data: { position: 3, actor: 'ana' } });
  });

  it('refuses to skip a reaction that is not parked, or one that never ran, saying why, and writes nothing', async () => {
    const { db } = await parkedLog();
    const notParked = await runCli(['reactions', 'skip', 'archiver', '--reason', 'x', '--db', db]);
    expect(notParked).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error reaction "archiver" is not parked on an event; cannot skip an event\n  see its state with `rewind reactions`\n',
    });
    const unknown = await runCli(['reactions', 'retry', 'mailr', '--db', db]);
    expect(unknown).toEqual({
      code: 3,
      stdout: '',
      stderr: 'error no reaction named "mailr" has run against this log\n  known reactions: archiver, mailer\n',
    });
    const asJson = await runCli(['reactions', 'skip', 'archiver', '--json', '--db', db]);
    expect(asJson.code).toBe(1);
    expect(JSON.parse(asJson.stderr)).toEqual({
      error: {
        code: 'REACTION_STATE',
        message: 'reaction "archiver" is not parked on an event; cannot skip an event',
        hint: 'see its state with `rewind reactions`',
      },
    });
    const store = await openStore(db);
    expect(await store.headPosition()).toBe(4);
    await store.close();
  });

  it('says so when no reaction has run against the log', async () => {
    const db = `sqlite:${join(tempDir('rewind-cli-reactions-'), 'rewind.db')}`;
    const store = await openStore(db);
    await store.append('mails', [{ type: 'Mail', data: {} }]);
    await store.close();
    expect(await runCli(['reactions', '--db', db])).toEqual({
      code: 0,
      stdout: 'no reaction has run against this log yet (give them to createRuntime({ reactions }) or `rewind worker --workflows`)\n',
      stderr: '',
    });
    expect(JSON.parse((await runCli(['reactions', '--json', '--db', db])).stdout)).toEqual([]);
  });
});
