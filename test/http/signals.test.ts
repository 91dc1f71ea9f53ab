import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, defineWorkflow } from '../../src/runtime/index.js';
import { ADMIN, type Harness, READER, startHarness } from './helpers.js';

let h: Harness;
afterEach(() => h?.close());

const invoice = defineWorkflow({
  name: 'invoice',
  initialState: null,
  apply: (s: null) => s,
  onFailure: 'compensate-and-fail',
  run: async (ctx) => {
    const po = await ctx.waitFor<string>('purchase-order');
    const yes = await ctx.approve('pay', { details: { po } });
    return { po, by: yes.actor };
  },
});

describe('signals and approvals over HTTP', () => {
  it('a run waits, a signal and an approval move it on; a rejection needs a reason; readers may not send', async () => {
    h = await startHarness(undefined, {
      runtime: (store) => createRuntime({ store, workflows: [invoice] }),
      tokens: { admin: ADMIN, read: READER },
    });
    const call = (path: string, json: unknown, token = ADMIN) => h.call(path, { json, token });
    expect((await call('/runs', { workflow: 'invoice', input: null, runId: 'inv-1' })).status).toBe(202);
    const run = async () => (await h.call('/runs/inv-1', { token: READER })).json();
    await expect.poll(async () => (await run()).status).toBe('waiting');
    expect((await run()).waiting).toEqual({ name: 'purchase-order' });

    expect((await call('/runs/inv-1/signals/purchase-order', { payload: 'PO-7' }, READER)).status).toBe(403);
    const signalled = await call('/runs/inv-1/signals/purchase-order', { payload: 'PO-7', actor: 'erp' });
    expect(signalled.status).toBe(200);
    expect((await signalled.json()).waiting).toEqual({ name: 'approval:pay', approval: { label: 'pay', details: { po: 'PO-7' } } });

    const noReason = await call('/runs/inv-1/approvals/pay', { approved: false });
    expect(noReason.status).toBe(400);
    const approved = await call('/runs/inv-1/approvals/pay', { approved: true, actor: 'ana' });
    expect(approved.status).toBe(200);
    expect(await approved.json()).toMatchObject({ status: 'completed', output: { po: 'PO-7', by: 'ana' } });
    // The run has ended: a signal is refused, and says why.
    const late = await call('/runs/inv-1/signals/purchase-order', { payload: 'PO-8' });
    expect(late.status).toBe(409);
    expect((await late.json()).error).toMatchObject({ code: 'RUN_STATE' });
  });
});
