import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open.js';
import type { EventStore } from '../../src/store/types.js';
import { startServer } from '../../src/surfaces/http/server.js';
import { ADMIN, startHarness } from './helpers.js';

describe('health and metrics', () => {
  it('reports health, and 503 when the store is gone', async () => {
    const h = await startHarness();
    try {
      expect(await (await h.call('/health')).json()).toEqual({ status: 'ok' });
      await h.store.close();
      const res = await h.call('/health');
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ status: 'unavailable' });
      // A closed store is a RewindError with a meaning: 503, not a 500.
      expect((await h.call('/streams')).status).toBe(503);
      expect((await h.call('/events/live?from=0')).status).toBe(503);
    } finally {
      await h.close();
    }
  });

  it('exposes Prometheus text: requests by route pattern, appended and read counts, head, subscribers', async () => {
    const h = await startHarness();
    try {
      await h.call('/streams/s-1/events', {
        json: {
          events: [
            { type: 'T', data: 1 },
            { type: 'T', data: 2 },
          ],
        },
      });
      await h.call('/streams/s-2/events', { json: { events: [{ type: 'T', data: 3 }] } });
      await h.call('/streams/s-1/events');
      await h.call('/streams/missing/events');
      const res = await h.call('/metrics');
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      expect(text).toContain('rewind_http_requests_total{method="POST",route="/streams/:streamId/events",status="200"} 2');
      expect(text).toContain('rewind_http_requests_total{method="GET",route="/streams/:streamId/events",status="404"} 1');
      expect(text).toContain('rewind_http_events_appended_total 3');
      expect(text).toContain('rewind_http_events_read_total 2');
      expect(text).toContain('rewind_store_head_position 3');
      expect(text).toContain('rewind_http_live_subscribers 0');
      expect(text).toMatch(
        /rewind_http_request_duration_seconds_bucket\{method="POST",route="\/streams\/:streamId\/events",le="\+Inf"\} 2/,
      );
      // Raw paths never become labels.
      expect(text).not.toContain('s-1');
      for (const line of text.trim().split('\n')) expect(line).toMatch(/^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? [\d.e+-]+)$/);
    } finally {
      await h.close();
    }
  });

  it('answers every response with a request id', async () => {
    const h = await startHarness();
    try {
      for (const path of ['/health', '/streams', '/nowhere'])
        expect((await h.call(path)).headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      await h.close();
    }
  });
});

describe('unexpected failures', () => {
  it('answer 500 "internal error" with a request id; the detail goes to the log only', async () => {
    const base = await openStore('memory:');
    const broken = new Proxy(base, {
      get(target, key, receiver) {
        if (key === 'listStreams')
          return async () => {
            throw new Error('secret detail at /srv/db.ts:42');
          };
        const value = Reflect.get(target, key, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as EventStore;
    const logged: Record<string, unknown>[] = [];
    const server = await startServer({ store: broken, port: 0, log: (entry) => logged.push(entry) });
    try {
      const res = await fetch(`${server.url}/streams`);
      expect(res.status).toBe(500);
      const body = await res.json();
      expect(body.error).toMatchObject({ code: 'INTERNAL', message: 'internal error' });
      expect(body.error.requestId).toBe(res.headers.get('x-request-id'));
      expect(JSON.stringify(body)).not.toMatch(/secret|\.ts|at /);
      expect(logged).toEqual([
        expect.objectContaining({ requestId: body.error.requestId, error: expect.stringContaining('secret detail') }),
      ]);
    } finally {
      await server.close();
      await base.close();
    }
  });
});

describe('static files (the web debugger hook)', () => {
  it('serves files from staticDir at / without a token, and the API behind it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rewind-static-'));
    await writeFile(join(dir, 'index.html'), '<!doctype html><title>Rewind</title>');
    await writeFile(join(dir, 'app.js'), 'console.log(1)');
    const h = await startHarness(undefined, { staticDir: dir, tokens: { admin: ADMIN } });
    try {
      const index = await h.call('/');
      expect(index.status).toBe(200);
      expect(await index.text()).toContain('<title>Rewind</title>');
      expect((await h.call('/app.js')).status).toBe(200);
      expect((await h.call('/streams')).status).toBe(401);
      expect((await h.call('/streams', { token: ADMIN })).status).toBe(200);
      expect((await h.call('/../package.json')).status).not.toBe(200);
      expect((await h.call('/%2e%2e/package.json')).status).not.toBe(200);
    } finally {
      await h.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
