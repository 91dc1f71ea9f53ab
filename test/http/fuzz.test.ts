import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime } from '../../src/runtime/index.js';
import { ADMIN, type Harness, READER, startHarness } from './helpers.js';
import { tripRuntime, World } from './workflows.js';

/**
 * Random and malformed requests at every route: the server never answers 5xx,
 * never dies, and the log changes only when a well-formed append was accepted.
 */
describe('fuzzing every route', () => {
  let h: Harness;
  let templates: string[];
  beforeAll(async () => {
    // The server's runtime knows no workflow, so nothing runs in the background
    // between two requests: every write is the answer to one request.
    h = await startHarness(undefined, {
      tokens: { admin: ADMIN, read: READER },
      bodyLimit: 64 * 1024,
      runtime: (store) => createRuntime({ store }),
    });
    await h.store.append('seed', [{ type: 'Seeded', data: { n: 1 } }]);
    const worker = tripRuntime(new World())(h.store);
    await worker.start('trip', { hotel: 'H' }, { runId: 'seed-run' });
    await worker.close();
    const doc = await (await h.call('/openapi.json', { token: READER })).json();
    templates = Object.keys(doc.paths);
  });
  afterAll(() => h.close());

  const text = fc.oneof(
    fc.string({ maxLength: 20 }),
    fc.string({ unit: 'grapheme', maxLength: 10 }),
    fc.constantFrom(
      '',
      '0',
      '-1',
      '1e3',
      '1.5',
      '99999999999999999999',
      'NaN',
      'seed',
      'forward',
      'backward',
      '%',
      '%zz',
      '../',
      'a,b,,',
      '\u0000',
    ),
    fc.integer().map(String),
  );
  const queryKeys = fc.constantFrom('from', 'to', 'limit', 'direction', 'prefix', 'after', 'streamPrefix', 'types', 'stream', 'x');
  const query = fc.array(fc.tuple(queryKeys, text), { maxLength: 5 });

  const newEvent = fc.record(
    {
      id: fc.oneof(fc.uuid(), text),
      type: text,
      data: fc.jsonValue({ maxDepth: 3 }),
      schemaVersion: fc.oneof(fc.integer({ min: -2, max: 3 }), text),
      metadata: fc.oneof(fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 })), fc.jsonValue({ maxDepth: 1 })),
      recordedAt: fc.oneof(
        fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
        text,
      ),
    },
    { requiredKeys: [] },
  );
  const appendBody = fc.record(
    {
      events: fc.oneof(fc.array(newEvent, { maxLength: 4 }), fc.jsonValue({ maxDepth: 2 })),
      expectedVersion: fc.oneof(
        fc.constantFrom('any', 'no_stream', 'exists', 'never'),
        fc.integer({ min: -3, max: 5 }),
        fc.jsonValue({ maxDepth: 1 }),
      ),
    },
    { requiredKeys: [] },
  );
  const body = fc.oneof(
    appendBody.map((b) => JSON.stringify(b)),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    fc.string({ maxLength: 200 }),
    fc.constantFrom('{', '{"events":', 'null', '[]', '{"events":[{"type":"T","data":1}]}', '\u0000\u00ff', ' '.repeat(70 * 1024)),
  );
  const validEvent = fc.record(
    {
      id: fc.uuid(),
      type: fc.string({ minLength: 1, maxLength: 20 }),
      data: fc.jsonValue({ maxDepth: 3 }),
      schemaVersion: fc.integer({ min: 1, max: 3 }),
      metadata: fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 })),
    },
    { requiredKeys: ['type', 'data'] },
  );
  const validAppend = fc.record(
    { events: fc.array(validEvent, { minLength: 1, maxLength: 3 }), expectedVersion: fc.constantFrom('any', 'no_stream', 'exists', 0, 1) },
    { requiredKeys: ['events'] },
  );
  const anyRequest = fc.record({
    method: fc.constantFrom('GET', 'GET', 'POST', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD'),
    template: fc.nat(),
    param: fc.oneof(
      fc.constantFrom('seed', 'seed-run', 'other', 'a%2Fb', '%2e%2e', '%00', ''),
      fc.string({ maxLength: 250 }).map(encodeURIComponent),
    ),
    garbagePath: fc.option(fc.webPath(), { freq: 5 }),
    query,
    body: fc.option(body, { freq: 4 }),
    contentType: fc.constantFrom(
      'application/json',
      'application/json',
      'text/plain',
      undefined,
      'application/json; charset=utf-8',
      'multipart/form-data',
    ),
    token: fc.constantFrom(ADMIN, ADMIN, READER, undefined, 'wrong-token-wrong-token'),
    lastEventId: fc.option(text, { freq: 3 }),
  });
  /** Random requests rarely get past validation; these are appends that mostly should. */
  const rollbackBody = fc.record(
    { to: fc.oneof(fc.constantFrom('latest', 'start', 'planned', 'nope'), fc.integer({ min: -1, max: 12 })), reason: text, after: text },
    { requiredKeys: ['to', 'reason'] },
  );
  const appendRequest = fc.record({
    method: fc.constant('POST'),
    template: fc.constant(-1),
    param: fc.constantFrom('seed', 'other', 'a%2Fb', 'fresh'),
    garbagePath: fc.constant(null),
    query,
    body: fc.oneof(
      validAppend.map((b) => JSON.stringify(b)),
      body,
    ),
    contentType: fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain'),
    token: fc.constantFrom(ADMIN, ADMIN, READER),
    lastEventId: fc.constant(null),
  });
  const actionRequest = fc.record({
    method: fc.constant('POST'),
    template: fc.constantFrom(-2, -3, -4, -5, -6, -7),
    param: fc.constantFrom('seed-run', 'ghost', 'seed'),
    garbagePath: fc.constant(null),
    query,
    body: fc.oneof(
      rollbackBody.map((b) => JSON.stringify(b)),
      body,
      fc.constant('{}'),
    ),
    contentType: fc.constantFrom('application/json', 'text/plain'),
    token: fc.constantFrom(ADMIN, ADMIN, READER),
    lastEventId: fc.constant(null),
  });
  const request = fc.oneof(anyRequest, appendRequest, actionRequest);
  const directed: Record<number, string> = {
    [-1]: '/streams/{streamId}/events',
    [-2]: '/runs/{runId}/rollback',
    [-3]: '/runs/{runId}/retry',
    [-4]: '/runs/{runId}/resolve',
    [-5]: '/runs/{runId}/resume',
    [-6]: '/runs/{runId}/cancel',
    [-7]: '/runs/{runId}/fork',
  };

  it('never answers 5xx, and writes only when an admin POST is accepted', async () => {
    const statuses = new Map<number, number>();
    let writes = 0;
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const template = directed[r.template] ?? (templates[r.template % templates.length] as string);
        const path = r.garbagePath ?? template.replace(/\{\w+\}/g, r.param);
        const search = new URLSearchParams(r.query).toString();
        const headers: Record<string, string> = {};
        if (r.contentType) headers['content-type'] = r.contentType;
        if (r.token) headers.authorization = `Bearer ${r.token}`;
        if (r.lastEventId !== null && /^[\x20-\x7e]*$/.test(r.lastEventId)) headers['last-event-id'] = r.lastEventId;
        const sendsBody = r.body !== null && r.method !== 'GET' && r.method !== 'HEAD';

        const before = await h.store.headPosition();
        const res = await fetch(`${h.url}${path}${search ? `?${search}` : ''}`, {
          method: r.method,
          headers,
          ...(sendsBody ? { body: r.body } : {}),
          signal: AbortSignal.timeout(5000),
        });
        // A live feed that was accepted never ends by itself.
        if (res.headers.get('content-type')?.startsWith('text/event-stream')) await res.body?.cancel();
        else await res.arrayBuffer();
        const after = await h.store.headPosition();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (after !== before) writes++;

        expect(res.status, `${r.method} ${path}?${search}`).toBeLessThan(500);
        const accepted = r.method === 'POST' && r.token === ADMIN && (res.status === 200 || res.status === 202);
        if (after !== before) expect(accepted, `${r.method} ${path} wrote with ${res.status}`).toBe(true);
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 400) },
    );
    expect((await h.call('/health')).status).toBe(200);
    // The generators reach past validation: some appends land, and reads succeed.
    expect(writes).toBeGreaterThan(0);
    expect(statuses.get(200)).toBeGreaterThan(10);
    if (process.env.FUZZ_RUNS) console.log(Object.fromEntries(statuses), { writes });
  });
});
