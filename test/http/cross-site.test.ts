import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, defineWorkflow } from '../../src/runtime/index.js';
import { builtInProjections } from '../../src/runtime/read-models.js';
import { sameHost } from '../../src/surfaces/http/cross-site.js';
import { ADMIN, type Harness, send, startHarness } from './helpers.js';
import { tripWorkflow, World } from './workflows.js';

/** A run that waits for a reviewer: signals, approvals and cancel have something to act on. */
const review = defineWorkflow({
  name: 'review',
  initialState: null,
  apply: (s: null) => s,
  run: async (ctx) => ctx.approve('pay'),
});

/**
 * Every route that acts, with a request it would accept. The list is checked
 * against the routes the server has, so a new one cannot be left out of the
 * refusals below: add it here.
 */
const ACTIONS: Record<string, { path: string; body?: unknown }> = {
  'POST /streams/{streamId}/events': { path: '/streams/s/events', body: { events: [{ type: 'T', data: 1 }] } },
  'POST /runs': { path: '/runs', body: { workflow: 'trip', input: { hotel: 'H' }, runId: 'trip-2' } },
  'POST /runs/{runId}/rollback': { path: '/runs/trip-1/rollback', body: { to: 'planned', reason: 'from a test' } },
  'POST /runs/{runId}/retry': { path: '/runs/trip-1/retry', body: {} },
  'POST /runs/{runId}/resolve': { path: '/runs/trip-1/resolve', body: { note: 'undone by hand' } },
  'POST /runs/{runId}/resume': { path: '/runs/trip-1/resume' },
  'POST /runs/{runId}/signals/{name}': { path: '/runs/review-1/signals/csrf', body: { payload: 1 } },
  'POST /runs/{runId}/approvals/{label}': { path: '/runs/review-1/approvals/pay', body: { approved: true } },
  'POST /runs/{runId}/cancel': { path: '/runs/review-1/cancel', body: {} },
  'POST /runs/{runId}/fork': { path: '/runs/trip-1/fork', body: {} },
  'POST /reactions/{name}/skip': { path: '/reactions/mailer/skip', body: { reason: 'from a test' } },
  'POST /reactions/{name}/retry': { path: '/reactions/mailer/retry', body: {} },
};

const json = (body: unknown): Record<string, string> => (body === undefined ? {} : { 'content-type': 'application/json' });
const text = (body: unknown) => (body === undefined ? undefined : JSON.stringify(body));

const HINT =
  'use the debugger at the address this server answers on, or call the API from a program (curl, a script), which sends no Origin; a reverse proxy in front must pass the Host header through';
const viaFetchSite = (site: string) => ({
  error: {
    code: 'CROSS_SITE',
    message: `refused: the browser says this request comes from a page on another site (Sec-Fetch-Site: ${site}); this server acts only on requests from its own pages`,
    hint: HINT,
  },
});
const viaOrigin = (origin: string, host: string) => ({
  error: {
    code: 'CROSS_SITE',
    message: `refused: this request comes from a page at ${origin} (Origin), not from this server (${host}); this server acts only on requests from its own pages`,
    hint: HINT,
  },
});

async function harness(tokens?: { admin: string }): Promise<Harness> {
  const world = new World();
  const h = await startHarness(undefined, {
    runtime: (store) => createRuntime({ store, workflows: [tripWorkflow(world), review], compensationRetry: { attempts: 1 } }),
    projections: builtInProjections,
    ...(tokens ? { tokens } : {}),
  });
  const runtime = h.runtime as NonNullable<Harness['runtime']>;
  await runtime.start('trip', { hotel: 'Harbour Inn' }, { runId: 'trip-1' });
  await runtime.start(review, null, { runId: 'review-1' });
  return h;
}

describe('requests that act, from web pages of other sites and origins', () => {
  let h: Harness;
  let host: string;
  beforeAll(async () => {
    h = await harness();
    host = `127.0.0.1:${h.server.port}`;
  });
  afterAll(() => h.close());

  it('are all listed here: every route but GET ones', async () => {
    const acting = new Set(
      h.server.app.routes
        .filter((r) => r.method !== 'ALL' && r.method !== 'GET')
        .map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`),
    );
    expect([...acting].sort()).toEqual(Object.keys(ACTIONS).sort());
  });

  it('are documented so: 403 on every one, and a body, where there is one, required and 415 when not JSON', async () => {
    const doc = (await send(h.url, 'GET', '/openapi.json')).body;
    for (const route of Object.keys(ACTIONS)) {
      const [method, path] = route.split(' ') as [string, string];
      const operation = doc.paths[path][method.toLowerCase()];
      expect(Object.keys(operation.responses), route).toContain('403');
      if (ACTIONS[route]?.body === undefined) {
        expect(operation.requestBody, route).toBeUndefined();
      } else {
        expect(operation.requestBody.required, route).toBe(true);
        expect(Object.keys(operation.requestBody.content), route).toEqual(['application/json']);
        expect(Object.keys(operation.responses), route).toContain('415');
      }
    }
  });

  it('are refused with 403 CROSS_SITE on every route that acts, and write nothing', async () => {
    const head = await h.store.headPosition();
    const other = `http://127.0.0.1:${h.server.port + 1}`;
    const foreign: [string, Record<string, string>, unknown][] = [
      // What a page elsewhere sends today.
      ['cross-site', { 'sec-fetch-site': 'cross-site', origin: 'http://evil.example' }, viaFetchSite('cross-site')],
      // Another port on the same host is the same site, and no more trusted.
      ['same-site', { 'sec-fetch-site': 'same-site', origin: other }, viaFetchSite('same-site')],
      ['an unknown Sec-Fetch-Site', { 'sec-fetch-site': 'sideways' }, viaFetchSite('sideways')],
      // Browsers without Sec-Fetch-Site still send Origin.
      ['a foreign Origin', { origin: 'http://evil.example' }, viaOrigin('http://evil.example', host)],
      ['another port', { origin: other }, viaOrigin(other, host)],
      ['localhost for 127.0.0.1', { origin: `http://localhost:${h.server.port}` }, viaOrigin(`http://localhost:${h.server.port}`, host)],
      [
        'https for http on another port',
        { origin: `https://127.0.0.1:${h.server.port + 1}` },
        viaOrigin(`https://127.0.0.1:${h.server.port + 1}`, host),
      ],
      ['a sandboxed page', { origin: 'null' }, viaOrigin('null', host)],
      [
        'same-origin claimed, Origin foreign',
        { 'sec-fetch-site': 'same-origin', origin: 'http://evil.example' },
        viaOrigin('http://evil.example', host),
      ],
    ];
    for (const [route, { path, body }] of Object.entries(ACTIONS)) {
      for (const [what, headers, refusal] of foreign) {
        // Everything else right: a JSON body the route would accept.
        const dressed = await send(h.url, 'POST', path, { ...headers, ...json(body) }, text(body));
        expect(dressed.status, `${route}, ${what}`).toBe(403);
        expect(dressed.body, `${route}, ${what}`).toEqual(refusal);
        // The no-cors shape: no body, no content type.
        const bare = await send(h.url, 'POST', path, headers);
        expect(bare.body, `${route}, ${what}, no body`).toEqual(refusal);
      }
    }
    // Other methods act too, and are refused the same way even where no route answers them.
    for (const method of ['PUT', 'PATCH', 'DELETE']) {
      const res = await send(h.url, method, '/runs/trip-1', { 'sec-fetch-site': 'cross-site' });
      expect(res.body, method).toEqual(viaFetchSite('cross-site'));
    }
    expect(await h.store.headPosition()).toBe(head);
  });

  it('from a name rebound to 127.0.0.1 look same-origin to the browser, and the Host check refuses them', async () => {
    const rebound = `evil.example:${h.server.port}`;
    const headers = { host: rebound, origin: `http://${rebound}`, 'sec-fetch-site': 'same-origin' };
    const res = await send(h.url, 'POST', '/runs/trip-1/fork', { ...headers, 'content-type': 'application/json' }, '{}');
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('FORBIDDEN_HOST');
  });

  it('are answered as before when they only read', async () => {
    const headers = { 'sec-fetch-site': 'cross-site', origin: 'http://evil.example' };
    expect((await send(h.url, 'GET', '/runs/trip-1', headers)).status).toBe(200);
    expect((await send(h.url, 'HEAD', '/health', headers)).status).toBe(200);
  });
});

describe('a body sent as anything but application/json', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness();
  });
  afterAll(() => h.close());

  const refusal = (route: string, type: string) => ({
    error: {
      code: 'UNSUPPORTED_MEDIA_TYPE',
      message: `${route} takes a JSON body, and the request's Content-Type is ${type}`,
      hint: 'send Content-Type: application/json with a JSON body ({} when every field is left out)',
    },
  });

  it('is refused with 415 on every route that declares a body, required or not, and nothing is written', async () => {
    const doc = (await send(h.url, 'GET', '/openapi.json')).body;
    const withBody: string[] = [];
    for (const [path, operations] of Object.entries(doc.paths as Record<string, Record<string, { requestBody?: unknown }>>)) {
      for (const [method, operation] of Object.entries(operations)) {
        if (operation.requestBody) withBody.push(`${method.toUpperCase()} ${path}`);
      }
    }
    expect(withBody.sort()).toEqual(
      Object.keys(ACTIONS)
        .filter((route) => ACTIONS[route]?.body !== undefined)
        .sort(),
    );
    const head = await h.store.headPosition();
    for (const route of withBody) {
      const { path, body } = ACTIONS[route] as { path: string; body: unknown };
      // No Origin: curl, or a browser's Origin check failing open. The content type alone refuses it.
      expect((await send(h.url, 'POST', path)).body, route).toEqual(refusal(route, 'missing'));
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx']) {
        const res = await send(h.url, 'POST', path, { 'content-type': type }, JSON.stringify(body));
        expect(res.status, `${route} as ${type}`).toBe(415);
        expect(res.body, `${route} as ${type}`).toEqual(refusal(route, JSON.stringify(type)));
      }
    }
    expect(await h.store.headPosition()).toBe(head);
  });

  it('is not needed where no body is declared: resume takes a bare POST', async () => {
    const res = await send(h.url, 'POST', '/runs/trip-1/resume');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ runId: 'trip-1', status: 'completed' });
  });
});

describe("the server's own pages and programs", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness();
  });
  afterAll(() => h.close());

  it('act on every route: same origin, an address typed in, and clients that send no Origin', async () => {
    const self = { 'sec-fetch-site': 'same-origin', origin: h.url };
    for (const [route, { path, body }] of Object.entries(ACTIONS)) {
      for (const headers of [self, { 'sec-fetch-site': 'none' }, {}] as Record<string, string>[]) {
        const res = await send(h.url, 'POST', path, { ...headers, ...json(body) }, text(body));
        // Not refused at the door; whether the run can do it is the route's business (a 409 for a retry with nothing stuck).
        expect([403, 415], `${route} with ${JSON.stringify(headers)}: ${JSON.stringify(res.body)}`).not.toContain(res.status);
      }
    }
    // The signal went in three times, then the approval (answered once, the run being done after it).
    const mailbox = await h.store.read('signals-review-1');
    expect(mailbox.map((e) => (e.data as { name: string }).name)).toEqual(['csrf', 'csrf', 'csrf', 'approval:pay']);
  });

  it('act when addressed by another loopback name, the Origin naming it', async () => {
    for (const name of ['localhost', '[::1]']) {
      const host = `${name}:${h.server.port}`;
      const res = await send(
        h.url,
        'POST',
        '/streams/by-name/events',
        {
          host,
          origin: `http://${host}`,
          'sec-fetch-site': 'same-origin',
          'content-type': 'application/json',
        },
        JSON.stringify({ events: [{ type: 'T', data: name }] }),
      );
      expect(res.status, name).toBe(200);
    }
  });
});

describe('with tokens', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ admin: ADMIN });
  });
  afterAll(() => h.close());

  it('a page of another site is refused even with the admin token; the same request from this origin acts', async () => {
    const { path, body } = ACTIONS['POST /runs/{runId}/fork'] as { path: string; body: unknown };
    const request = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };
    const foreign = await send(
      h.url,
      'POST',
      path,
      { ...request, 'sec-fetch-site': 'cross-site', origin: 'http://evil.example' },
      text(body),
    );
    expect(foreign.body).toEqual(viaFetchSite('cross-site'));
    const own = await send(h.url, 'POST', path, { ...request, 'sec-fetch-site': 'same-origin', origin: h.url }, text(body));
    expect(own.status).toBe(202);
  });

  it('a foreign page without a token is told it is cross-site, not asked for a token', async () => {
    const res = await send(h.url, 'POST', '/runs/trip-1/fork', { origin: 'http://evil.example' });
    expect(res.body).toEqual(viaOrigin('http://evil.example', `127.0.0.1:${h.server.port}`));
  });
});

describe('sameHost', () => {
  it.each([
    ['http://127.0.0.1:4600', '127.0.0.1:4600', true],
    ['http://localhost:4600', 'localhost:4600', true],
    ['http://LOCALHOST:4600', 'localhost:4600', true],
    ['http://[::1]:4600', '[::1]:4600', true],
    ['https://rewind.example.com', 'rewind.example.com', true],
    ['http://rewind.example.com', 'rewind.example.com:80', true],
    ['https://rewind.example.com', 'rewind.example.com:80', false],
    ['http://localhost:4600', '127.0.0.1:4600', false],
    ['http://127.0.0.1:4601', '127.0.0.1:4600', false],
    ['http://127.0.0.1', '127.0.0.1:4600', false],
    ['null', '127.0.0.1:4600', false],
    ['file://', '127.0.0.1:4600', false],
    ['http://127.0.0.1:4600/', '127.0.0.1:4600', false],
    ['http://evil@127.0.0.1:4600', '127.0.0.1:4600', false],
    ['http://127.0.0.1:4600', 'evil.example@127.0.0.1:4600', false],
    ['http://127.0.0.1:4600', '127.0.0.1:4600/path', false],
    ['http://127.0.0.1:4600', '', false],
  ])('%s from a page, Host %s: %s', (origin, host, same) => {
    expect(sameHost(origin, host)).toBe(same);
  });

  it('is false without a Host', () => {
    expect(sameHost('http://127.0.0.1:4600', undefined)).toBe(false);
  });
});
