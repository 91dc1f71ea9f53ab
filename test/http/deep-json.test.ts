import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, defineWorkflow, NotJsonError } from '../../src/runtime/index.js';
import { type Harness, send, startHarness } from './helpers.js';

const waits = defineWorkflow({
  name: 'waits',
  initialState: null,
  apply: (s: null) => s,
  run: async (ctx) => ctx.waitFor('go'),
});

const DEPTHS = [1001, 3000, 4000, 10_000, 100_000];
/** JSON text of arrays nested `levels` deep around a number. */
const nested = (levels: number) => `${'['.repeat(levels)}1${']'.repeat(levels)}`;

const TOO_DEEP = {
  error: {
    code: 'VALIDATION',
    message: 'invalid request: body: nested more than 1000 levels deep',
    hint: 'JSON here may nest 1000 levels at most: flatten the value',
    issues: [{ field: 'body', message: 'nested more than 1000 levels deep' }],
  },
};

describe('JSON nested deeper than 1000 levels', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(undefined, { runtime: (store) => createRuntime({ store, workflows: [waits] }) });
    await h.runtime?.start(waits, null, { runId: 'w-1' });
  });
  afterAll(() => h.close());

  const json = { 'content-type': 'application/json' };

  it.each(DEPTHS)('is the same 400 at %i levels, wherever it is sent, and nothing is written', async (levels) => {
    const head = await h.store.headPosition();
    const deep = nested(levels);
    const bodies: [string, string][] = [
      ['/streams/s/events', `{"events":[{"type":"T","data":${deep}}]}`],
      ['/runs/w-1/signals/go', `{"payload":${deep}}`],
      ['/runs', `{"workflow":"waits","input":${deep}}`],
      ['/runs/w-1/fork', `{"input":${deep}}`],
      ['/runs/w-1/approvals/pay', deep],
    ];
    for (const [path, body] of bodies) {
      const res = await send(h.url, 'POST', path, json, body);
      expect(res.status, path).toBe(400);
      expect(res.body, path).toEqual(TOO_DEEP);
    }
    expect(await h.store.headPosition()).toBe(head);
  });

  it('is looked at before the route reads the body, on every route that takes one', async () => {
    const doc = (await send(h.url, 'GET', '/openapi.json')).body;
    const routes = Object.entries(doc.paths as Record<string, { post?: { requestBody?: unknown } }>)
      .filter(([, operations]) => operations.post?.requestBody)
      .map(([path]) => path);
    expect(routes.length).toBe(11);
    for (const route of routes) {
      const path = route.replace(/\{\w+\}/g, 'w-1');
      expect((await send(h.url, 'POST', path, json, `{"unknown":${nested(4000)}}`)).body, route).toEqual(TOO_DEEP);
    }
  });

  it('is accepted up to the limit: a body 1000 levels deep is read', async () => {
    // The body's object, the events array and the event are three of the 1000.
    const res = await send(h.url, 'POST', '/streams/at-limit/events', json, `{"events":[{"type":"T","data":${nested(997)}}]}`);
    expect(res.status).toBe(200);
    const over = await send(h.url, 'POST', '/streams/at-limit/events', json, `{"events":[{"type":"T","data":${nested(998)}}]}`);
    expect(over.body).toEqual(TOO_DEEP);
  });

  it('in process, a signal payload too deep is NotJsonError at every depth, never a stack overflow', async () => {
    const runtime = h.runtime as NonNullable<Harness['runtime']>;
    for (const levels of DEPTHS) {
      const error = await runtime.signal('w-1', 'go', JSON.parse(nested(levels))).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NotJsonError);
      expect((error as NotJsonError).message).toMatch(
        /^payload of signal "go" cannot be journaled: \$ is nested more than 1000 levels deep, which JSON cannot represent \(/,
      );
    }
  });
});
