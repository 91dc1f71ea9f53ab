import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backends, type Harness, startHarness } from './helpers.js';

describe.each(backends)('events routes on $name', (backend) => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness(backend);
  });
  afterEach(() => h.close());

  const append = (stream: string, body: unknown) => h.call(`/streams/${encodeURIComponent(stream)}/events`, { json: body });

  it('appends, then reads the stream forward, backward and by range', async () => {
    const res = await append('order-1', {
      events: [
        { type: 'Placed', data: { total: 10 }, metadata: { actor: 'py-agent' } },
        { type: 'Paid', data: null },
        { type: 'Shipped', data: [1, 2] },
      ],
      expectedVersion: 'no_stream',
    });
    expect(res.status).toBe(200);
    const result = await res.json();
    expect(result).toMatchObject({ streamId: 'order-1', version: 3 });
    expect(result.events.map((e: { type: string }) => e.type)).toEqual(['Placed', 'Paid', 'Shipped']);
    expect(result.events[0].metadata).toEqual({ actor: 'py-agent' });

    const all = await (await h.call('/streams/order-1/events')).json();
    expect(all.events.map((e: { version: number }) => e.version)).toEqual([1, 2, 3]);
    expect(all.next).toBeUndefined();

    const back = await (await h.call('/streams/order-1/events?direction=backward&limit=2')).json();
    expect(back.events.map((e: { version: number }) => e.version)).toEqual([3, 2]);
    expect(back.next).toBe(1);

    const range = await (await h.call('/streams/order-1/events?from=2&to=2')).json();
    expect(range.events.map((e: { type: string }) => e.type)).toEqual(['Paid']);

    const page = await (await h.call('/streams/order-1/events?limit=2')).json();
    expect(page.next).toBe(3);
  });

  it('takes stream ids with a slash when it is percent-encoded', async () => {
    expect((await append('tenant/a', { events: [{ type: 'T', data: 1 }] })).status).toBe(200);
    const read = await (await h.call('/streams/tenant%2Fa/events')).json();
    expect(read.events[0].streamId).toBe('tenant/a');
  });

  it('is idempotent by event id and reports a reused id with other content as 409', async () => {
    const body = { events: [{ id: 'evt-1', type: 'T', data: { n: 1 } }] };
    const first = await (await append('s', body)).json();
    const again = await append('s', body);
    expect(again.status).toBe(200);
    expect((await again.json()).position).toBe(first.position);
    expect(await h.store.headPosition()).toBe(first.position);

    const clash = await append('s', { events: [{ id: 'evt-1', type: 'T', data: { n: 2 } }] });
    expect(clash.status).toBe(409);
    expect((await clash.json()).error.code).toBe('EVENT_ID_CONFLICT');
  });

  it('answers a concurrency conflict with 409 and the actual version', async () => {
    await append('s', { events: [{ type: 'T', data: 1 }] });
    const res = await append('s', { events: [{ type: 'T', data: 2 }], expectedVersion: 0 });
    expect(res.status).toBe(409);
    const body = await res.json();
    expect(body.error).toMatchObject({ code: 'CONCURRENCY', actualVersion: 1 });
    expect(body.error.hint).toMatch(/read the stream again/);
    expect(await h.store.streamVersion('s')).toBe(1);
  });

  it('reads the whole log with paging and filters', async () => {
    await append('run-1', {
      events: [
        { type: 'A', data: 1 },
        { type: 'B', data: 2 },
      ],
    });
    await append('job-1', { events: [{ type: 'A', data: 3 }] });
    await append('run-2', { events: [{ type: 'C', data: 4 }] });

    const first = await (await h.call('/events?limit=2')).json();
    expect(first.events).toHaveLength(2);
    const rest = await (await h.call(`/events?from=${first.next}`)).json();
    expect([...first.events, ...rest.events].map((e: { data: number }) => e.data)).toEqual([1, 2, 3, 4]);

    const runs = await (await h.call('/events?streamPrefix=run-')).json();
    expect(runs.events.map((e: { data: number }) => e.data)).toEqual([1, 2, 4]);
    const typed = await (await h.call('/events?types=A,C')).json();
    expect(typed.events.map((e: { data: number }) => e.data)).toEqual([1, 3, 4]);
    const repeated = await (await h.call('/events?types=B&types=C&streamPrefix=run-')).json();
    expect(repeated.events.map((e: { data: number }) => e.data)).toEqual([2, 4]);
    const none = await (await h.call(`/events?from=${rest.next}`)).json();
    expect(none).toEqual({ events: [], next: rest.next });
  });

  it('lists streams with paging', async () => {
    for (const id of ['a', 'b', 'c']) await append(id, { events: [{ type: 'T', data: id }] });
    const page = await (await h.call('/streams?limit=2')).json();
    expect(page.streams.map((s: { streamId: string }) => s.streamId)).toEqual(['a', 'b']);
    expect(page.streams[0]).toMatchObject({ version: 1 });
    const next = await (await h.call(`/streams?after=${page.next}`)).json();
    expect(next).toEqual({ streams: [expect.objectContaining({ streamId: 'c' })] });
    const prefixed = await (await h.call('/streams?prefix=b')).json();
    expect(prefixed.streams).toHaveLength(1);
  });

  it('verifies one stream or all', async () => {
    await append('a', {
      events: [
        { type: 'T', data: 1 },
        { type: 'T', data: 2 },
      ],
    });
    await append('b', { events: [{ type: 'T', data: 3 }] });
    expect(await (await h.call('/verify')).json()).toEqual({
      ok: true,
      streams: 2,
      events: 3,
      position: 3,
      problems: [],
      problemCount: 0,
      seals: { found: 0, verified: 0, unverified: 0, coveredTo: 0 },
    });
    expect(await (await h.call('/verify?stream=a')).json()).toMatchObject({ ok: true, streams: 1, events: 2 });
    const missing = await h.call('/verify?stream=nope');
    expect(missing.status).toBe(404);
  });

  it('answers unknown streams and routes with 404', async () => {
    const res = await h.call('/streams/ghost/events');
    expect(res.status).toBe(404);
    expect((await res.json()).error).toMatchObject({ code: 'NOT_FOUND', message: 'stream "ghost" does not exist' });
    const route = await h.call('/nowhere');
    expect(route.status).toBe(404);
    expect((await route.json()).error.code).toBe('NOT_FOUND');
  });

  it('refuses bad bodies with 400 naming the field, and writes nothing', async () => {
    const cases: [unknown, RegExp][] = [
      [{}, /events/],
      [{ events: [] }, /events/],
      [{ events: [{ data: 1 }] }, /events\[0\]\.type/],
      [{ events: [{ type: 'T' }] }, /events\[0\]\.data/],
      [{ events: [{ type: 'T', data: 1 }], expectedVersion: -1 }, /expectedVersion/],
      [{ events: [{ type: 'T', data: 1 }], expectedVersion: 'maybe' }, /expectedVersion/],
      [{ events: [{ type: 'T', data: 1, extra: true }] }, /events\[0\]/],
      [{ events: [{ type: 'T', data: 1, recordedAt: 'yesterday' }] }, /recordedAt/],
      [{ events: [{ type: 'T', data: 1, metadata: [] }] }, /metadata/],
      [[1, 2], /body/],
    ];
    for (const [body, field] of cases) {
      const res = await append('s', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const problem = await res.json();
      expect(problem.error.code).toBe('VALIDATION');
      expect(problem.error.message, JSON.stringify(body)).toMatch(field);
    }
    const malformed = await h.call('/streams/s/events', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"events":',
    });
    expect(malformed.status).toBe(400);
    expect((await malformed.json()).error.code).toBe('BAD_REQUEST');
    const textBody = await h.call('/streams/s/events', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
    expect(textBody.status).toBe(415);
    expect(await h.store.headPosition()).toBe(0);
  });

  it('refuses bad query strings with 400 naming the parameter', async () => {
    await append('s', { events: [{ type: 'T', data: 1 }] });
    for (const [path, field] of [
      ['/streams/s/events?limit=0', 'query.limit'],
      ['/streams/s/events?limit=100001', 'query.limit'],
      ['/streams/s/events?from=-1', 'query.from'],
      ['/streams/s/events?from=1e3', 'query.from'],
      ['/streams/s/events?direction=sideways', 'query.direction'],
      ['/events?from=abc', 'query.from'],
      ['/streams?limit=', 'query.limit'],
    ] as const) {
      const res = await h.call(path);
      expect(res.status, path).toBe(400);
      const { error } = await res.json();
      expect(
        error.issues.map((i: { field: string }) => i.field),
        path,
      ).toContain(field);
    }
  });

  it('refuses bodies over the limit with 413 and keeps serving the connection', async () => {
    const big = { events: [{ type: 'T', data: 'x'.repeat(1024 * 1024) }] };
    const res = await append('s', big);
    expect(res.status).toBe(413);
    expect((await res.json()).error.code).toBe('PAYLOAD_TOO_LARGE');

    // Without Content-Length the limit is counted while reading.
    const chunks = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 20; i++) controller.enqueue(new TextEncoder().encode(' '.repeat(100_000)));
        controller.close();
      },
    });
    const streamed = await fetch(`${h.url}/streams/s/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: chunks,
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect((await h.call('/health')).status).toBe(200);
    expect(await h.store.headPosition()).toBe(0);
  });
});

describe('body limit', () => {
  it('is configurable', async () => {
    const h = await startHarness(undefined, { bodyLimit: 200 });
    try {
      const small = await h.call('/streams/s/events', { json: { events: [{ type: 'T', data: 1 }] } });
      expect(small.status).toBe(200);
      const res = await h.call('/streams/s/events', { json: { events: [{ type: 'T', data: 'x'.repeat(300) }] } });
      expect(res.status).toBe(413);
    } finally {
      await h.close();
    }
  });
});
