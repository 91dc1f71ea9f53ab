// A run waits; the process that started it is gone; `rewind signal` and
// `rewind approve` from other processes move it on.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRuntime, isRunEvent, openStore, RunEvents } from '../../src/index.js';
import { tempDir } from '../support/temp.js';
import { booking, invoice } from './fixtures/approval-workflow.js';
import { runCli } from './run-cli.js';

describe('rewind signal, approve and reject', () => {
  it('move a waiting run on from another process, and say what it waits for next', async () => {
    const db = `sqlite:${join(tempDir('rewind-cli-signal-'), 'rewind.db')}`;
    const store = await openStore(db);
    expect((await createRuntime({ store, workflows: [invoice] }).start(invoice, null, { runId: 'inv' })).status).toBe('waiting');
    await store.close();

    const workflows = ['--db', db, '--workflows', 'test/cli/fixtures/approval-workflow.ts'];
    const bad = await runCli(['signal', 'inv', 'purchase-order', '--data', '{nope', ...workflows]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--data is not JSON');
    const signalled = await runCli(['signal', 'inv', 'purchase-order', '--data', '"PO-7"', '--actor', 'erp', ...workflows]);
    expect(signalled).toMatchObject({ code: 0, stdout: 'inv is now waiting for approval "pay"\n' });
    const shown = await runCli(['show', 'inv', '--db', db]);
    expect(shown.stdout).toContain('waiting for approval "pay"');
    expect(shown.stdout).toContain('rewind approve inv pay   or   rewind reject inv pay --reason "why"');
    expect(shown.stdout).toContain('purchase-order ← "PO-7" from erp');

    const noReason = await runCli(['reject', 'inv', 'pay', ...workflows]);
    expect(noReason.code).toBe(2);
    const approved = await runCli(['approve', 'inv', 'pay', '--actor', 'ana', '--json', ...workflows]);
    expect(approved.code).toBe(0);
    expect(JSON.parse(approved.stdout)).toMatchObject({ status: 'completed', output: { po: 'PO-7', by: 'ana' } });

    const again = await openStore(db);
    const received = (await again.read('run-inv')).filter((e) => isRunEvent(e, RunEvents.SignalReceived)).map((e) => e.data);
    expect(received).toMatchObject([
      { name: 'purchase-order', payload: 'PO-7', actor: 'erp' },
      { name: 'approval:pay', payload: { approved: true }, actor: 'ana' },
    ]);
    await again.close();
  });

  it('say what the act undid, as the other run commands do: a rejection the policy rolls back lists its compensations', async () => {
    // Given a run that holds a room, then waits for approval, and fails (compensating) when rejected...
    const db = `sqlite:${join(tempDir('rewind-cli-reject-'), 'rewind.db')}`;
    const store = await openStore(db);
    expect((await createRuntime({ store, workflows: [booking] }).start(booking, null, { runId: 'stay' })).status).toBe('waiting');
    await store.close();
    // ...when it is rejected from the CLI, then the run failed (exit 1) and the hold was undone.
    const rejected = await runCli([
      'reject',
      'stay',
      'book',
      '--reason',
      'no budget',
      '--db',
      db,
      '--workflows',
      'test/cli/fixtures/approval-workflow.ts',
    ]);
    expect(rejected).toEqual({
      code: 1,
      stdout: ['stay is now failed', 'compensations, newest step first:', '  ⟲ hold-room: compensated', ''].join('\n'),
      stderr: '',
    });
  });
});
