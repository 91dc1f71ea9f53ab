import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open.js';
import { HttpConfigError } from '../../src/surfaces/http/errors.js';
import { startServer } from '../../src/surfaces/http/server.js';
import { ADMIN, type Harness, READER, startHarness } from './helpers.js';

describe('with tokens', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(undefined, { tokens: { admin: ADMIN, read: READER } });
  });
  afterAll(() => h.close());

  const body = { events: [{ type: 'T', data: 1 }] };

  it('asks for a token on every route but /health, loopback included', async () => {
    expect((await h.call('/health')).status).toBe(200);
    for (const path of ['/streams', '/events', '/verify', '/metrics', '/openapi.json', '/streams/s/events']) {
      const res = await h.call(path);
      expect(res.status, path).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect((await res.json()).error.code).toBe('UNAUTHORIZED');
    }
    expect((await h.call('/streams/s/events', { json: body })).status).toBe(401);
  });

  it('refuses a wrong token, a malformed header and another scheme', async () => {
    for (const authorization of [
      `Bearer ${ADMIN}x`,
      `Bearer ${ADMIN.slice(0, -1)}`,
      'Bearer',
      ADMIN,
      `Basic ${ADMIN}`,
      `Bearer ${ADMIN} extra`,
    ]) {
      const res = await h.call('/streams', { headers: { authorization } });
      expect(res.status, authorization).toBe(401);
    }
  });

  it('lets a read-only token read but not append', async () => {
    expect((await h.call('/streams', { token: READER })).status).toBe(200);
    expect((await h.call('/metrics', { token: READER })).status).toBe(200);
    const res = await h.call('/streams/s/events', { json: body, token: READER });
    expect(res.status).toBe(403);
    expect((await res.json()).error.code).toBe('FORBIDDEN');
    expect(await h.store.headPosition()).toBe(0);
  });

  it('lets an admin token do everything', async () => {
    expect((await h.call('/streams/s/events', { json: body, token: ADMIN })).status).toBe(200);
    expect((await h.call('/streams/s/events', { token: ADMIN })).status).toBe(200);
    expect((await h.call('/streams', { headers: { authorization: `bearer ${ADMIN}` } })).status).toBe(200);
  });

  it('answers any Host when tokens guard it', async () => {
    expect(await statusWithHost(h.url, '/streams', 'rewind.example.com', ADMIN)).toBe(200);
  });
});

describe('without tokens', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  it('reads and writes on loopback', async () => {
    expect((await h.call('/streams/s/events', { json: { events: [{ type: 'T', data: 1 }] } })).status).toBe(200);
  });

  it('refuses requests addressed to another host name (DNS rebinding)', async () => {
    expect(await statusWithHost(h.url, '/streams', 'evil.example.com')).toBe(403);
    expect(await statusWithHost(h.url, '/streams', `localhost:${h.server.port}`)).toBe(200);
    expect(await statusWithHost(h.url, '/streams', `[::1]:${h.server.port}`)).toBe(200);
    expect(await statusWithHost(h.url, '/health', 'evil.example.com')).toBe(200);
  });
});

describe('binding', () => {
  it('refuses to listen beyond loopback without a token, and binds nothing', async () => {
    const store = await openStore('memory:');
    try {
      for (const host of ['0.0.0.0', '::', '192.168.1.10', 'example.com']) {
        const attempt = startServer({ store, host, port: 0 });
        await expect(attempt).rejects.toBeInstanceOf(HttpConfigError);
        await expect(attempt).rejects.toMatchObject({ code: 'HTTP_CONFIG', hint: expect.stringMatching(/token/) });
      }
    } finally {
      await store.close();
    }
  });

  it('listens on 0.0.0.0 with a token and enforces it', async () => {
    const store = await openStore('memory:');
    const server = await startServer({ store, host: '0.0.0.0', port: 0, tokens: { admin: ADMIN }, log: () => {} });
    try {
      const url = `http://127.0.0.1:${server.port}`;
      expect((await fetch(`${url}/streams`)).status).toBe(401);
      expect((await fetch(`${url}/streams`, { headers: { authorization: `Bearer ${ADMIN}` } })).status).toBe(200);
    } finally {
      await server.close();
      await store.close();
    }
  });

  it('refuses weak or ambiguous tokens', async () => {
    const store = await openStore('memory:');
    try {
      await expect(startServer({ store, port: 0, tokens: { admin: 'short' } })).rejects.toBeInstanceOf(HttpConfigError);
      await expect(startServer({ store, port: 0, tokens: { admin: `${ADMIN} x` } })).rejects.toBeInstanceOf(HttpConfigError);
      await expect(startServer({ store, port: 0, tokens: { admin: ADMIN, read: ADMIN } })).rejects.toBeInstanceOf(HttpConfigError);
      await expect(startServer({ store, port: 70_000 })).rejects.toBeInstanceOf(HttpConfigError);
    } finally {
      await store.close();
    }
  });
});

/** fetch() will not send a Host of our choosing; node:http will. */
function statusWithHost(base: string, path: string, host: string, token?: string): Promise<number> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path: url.pathname, headers: { host, ...(token ? { authorization: `Bearer ${token}` } : {}) } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end();
  });
}
