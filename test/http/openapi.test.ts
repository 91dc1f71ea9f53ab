import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtInProjections } from '../../src/runtime/read-models.js';
import { type Harness, startHarness } from './helpers.js';
import { tripRuntime, World } from './workflows.js';

describe('the OpenAPI document', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(undefined, { runtime: tripRuntime(new World()), projections: builtInProjections });
  });
  afterAll(() => h.close());

  it('lists exactly the routes the server answers', async () => {
    const doc = await (await h.call('/openapi.json')).json();
    expect(doc.openapi).toBe('3.1.0');
    const documented = new Set<string>();
    for (const [path, operations] of Object.entries(doc.paths as Record<string, object>)) {
      for (const method of Object.keys(operations)) documented.add(`${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`);
    }
    // Middleware is registered for every method ("ALL"); only endpoints count.
    const registered = new Set(h.server.app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path}`));
    expect([...documented].sort()).toEqual([...registered].sort());
    expect(registered.size).toBeGreaterThanOrEqual(20);
  });

  it('describes every operation with its errors and the bearer scheme', async () => {
    const doc = await (await h.call('/openapi.json')).json();
    expect(doc.components.securitySchemes.bearer).toEqual({ type: 'http', scheme: 'bearer' });
    expect(doc.components.schemas.Problem).toBeDefined();
    for (const [path, operations] of Object.entries(doc.paths as Record<string, Record<string, { responses: object; summary?: string }>>)) {
      for (const [method, op] of Object.entries(operations)) {
        expect(op.summary, `${method} ${path}`).toBeTruthy();
        const statuses = Object.keys(op.responses);
        expect(
          statuses.some((s) => s.startsWith('2')),
          `${method} ${path}`,
        ).toBe(true);
        if (path !== '/health') expect(statuses, `${method} ${path}`).toEqual(expect.arrayContaining(['401', '500']));
      }
    }
    const append = doc.paths['/streams/{streamId}/events'].post;
    expect(append.requestBody.required).toBe(true);
    expect(Object.keys(append.responses)).toEqual(expect.arrayContaining(['400', '403', '409', '413']));
    // An operator's word on a parked reaction: a JSON body ({} at least), refused with 409 when it is not parked.
    const skip = doc.paths['/reactions/{name}/skip'].post;
    expect(skip.requestBody.required).toBe(true);
    expect(Object.keys(skip.responses)).toEqual(expect.arrayContaining(['200', '400', '403', '404', '409']));
    expect(doc.components.schemas.ReactionStatus.required).toEqual([
      'name',
      'state',
      'position',
      'head',
      'lagEvents',
      'parked',
      'skipped',
      'heldBy',
    ]);
  });

  it('answers every documented GET without a path parameter with 200', async () => {
    const doc = await (await h.call('/openapi.json')).json();
    for (const [path, operations] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      if (!('get' in operations) || path.includes('{') || path === '/events/live') continue;
      const res = await h.call(path);
      expect(res.status, path).toBe(200);
    }
  });
});
