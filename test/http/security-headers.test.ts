import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, type Harness, send, startHarness } from './helpers.js';

/** On every answer: the debugger's pages and the API's. */
const COMMON = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
};
const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const API_CSP = "default-src 'none'; frame-ancestors 'none'";

describe('security headers', () => {
  let h: Harness;
  let web: string;
  beforeAll(async () => {
    web = await mkdtemp(join(tmpdir(), 'rewind-web-'));
    await mkdir(join(web, 'assets'));
    await writeFile(join(web, 'index.html'), '<!doctype html><script type="module" src="./assets/app.js"></script>');
    await writeFile(join(web, 'assets/app.js'), 'document.title = "debugger";');
    h = await startHarness(undefined, { staticDir: web, tokens: { admin: ADMIN } });
  });
  afterAll(async () => {
    await h.close();
    await rm(web, { recursive: true, force: true });
  });

  it("the debugger's files carry its Content-Security-Policy: scripts, styles and calls from this server only, framed nowhere", async () => {
    for (const path of ['/', '/index.html', '/assets/app.js']) {
      const { status, headers } = await send(h.url, 'GET', path);
      expect(status, path).toBe(200);
      expect(headers, path).toMatchObject({ ...COMMON, 'content-security-policy': PAGE_CSP });
      expect(headers['strict-transport-security'], path).toBeUndefined();
    }
  });

  it('every API answer, errors included, carries the headers and a policy that loads nothing', async () => {
    const bearer = { authorization: `Bearer ${ADMIN}` };
    const answers = [
      await send(h.url, 'GET', '/health'),
      await send(h.url, 'GET', '/streams', bearer),
      await send(h.url, 'GET', '/metrics', bearer),
      // 401, 404, 403 CROSS_SITE, 415
      await send(h.url, 'GET', '/streams'),
      await send(h.url, 'GET', '/nowhere', bearer),
      await send(h.url, 'POST', '/streams/s/events', { ...bearer, 'sec-fetch-site': 'cross-site' }),
      await send(h.url, 'POST', '/streams/s/events', bearer),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 401, 404, 403, 415]);
    for (const { status, headers } of answers) {
      expect(headers, String(status)).toMatchObject({ ...COMMON, 'content-security-policy': API_CSP });
    }
  });

  it('the live feed carries them too', async () => {
    const live = await fetch(`${h.url}/events/live`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(live.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(live.headers.get('x-content-type-options')).toBe('nosniff');
    expect(live.headers.get('content-security-policy')).toBe(API_CSP);
    await live.body?.cancel();
  });
});
