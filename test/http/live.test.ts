import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventEnvelope } from '../../src/events/envelope.js';
import { backends, type Harness, sseMessages, startHarness, take, textChunks } from './helpers.js';

describe.each(backends)('live feed on $name', (backend) => {
  let h: Harness;
  const feeds: AbortController[] = [];
  beforeEach(async () => {
    h = await startHarness(backend, { heartbeatMs: 50 });
  });
  afterEach(async () => {
    for (const feed of feeds.splice(0)) feed.abort();
    await h.close();
  });

  async function open(path: string, headers: Record<string, string> = {}) {
    const feed = new AbortController();
    feeds.push(feed);
    const res = await h.call(path, { signal: feed.signal, headers });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    return { res, messages: sseMessages(res), feed };
  }

  const parse = (data: string) => JSON.parse(data) as EventEnvelope;

  it('delivers live appends in order, with the position as the id', async () => {
    await h.store.append('before', [{ type: 'Old', data: 0 }]);
    const { messages } = await open('/events/live');
    const writes = (async () => {
      for (let i = 1; i <= 20; i++) {
        const res = await h.call(`/streams/s${i % 3}/events`, { json: { events: [{ type: 'N', data: i }] } });
        expect(res.status).toBe(200);
      }
    })();
    const got = await take(messages, 20);
    await writes;
    const events = got.map((m) => parse(m.data));
    expect(events.map((e) => e.data)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(got.map((m) => Number(m.id))).toEqual(events.map((e) => e.position));
    expect(events.every((e) => e.type === 'N')).toBe(true);
  });

  it('catches up from a position and resumes after Last-Event-ID with no gap and no repeat', async () => {
    for (let i = 1; i <= 5; i++) await h.store.append('s', [{ type: 'N', data: i }]);
    const first = await open('/events/live?from=0');
    const seen = (await take(first.messages, 3)).map((m) => ({ id: m.id as string, data: parse(m.data).data }));
    expect(seen.map((s) => s.data)).toEqual([1, 2, 3]);
    first.feed.abort();

    await h.store.append('s', [{ type: 'N', data: 6 }]);
    // A reconnecting EventSource sends the last id it saw; it wins over `from`.
    const again = await open('/events/live?from=0', { 'last-event-id': seen[2]?.id as string });
    const rest = (await take(again.messages, 3)).map((m) => parse(m.data).data);
    expect(rest).toEqual([4, 5, 6]);
  });

  it('filters by stream prefix and type', async () => {
    const { messages } = await open('/events/live?streamPrefix=run-&types=Wanted');
    await h.store.append('run-1', [{ type: 'Other', data: 1 }]);
    await h.store.append('job-1', [{ type: 'Wanted', data: 2 }]);
    await h.store.append('run-2', [{ type: 'Wanted', data: 3 }]);
    const [only] = await take(messages, 1);
    expect(parse(only?.data as string)).toMatchObject({ streamId: 'run-2', data: 3 });
  });

  it('sends heartbeats while idle and counts its subscribers', async () => {
    const { res, feed } = await open('/events/live');
    let text = '';
    for await (const chunk of textChunks(res)) {
      text += chunk;
      if (text.includes(': heartbeat')) break;
    }
    expect(text).toContain(': heartbeat');
    expect(await subscribers(h)).toBe(1);
    feed.abort();
    await expect.poll(() => subscribers(h)).toBe(0);
  });

  it('refuses a bad Last-Event-ID or query before streaming', async () => {
    expect((await h.call('/events/live', { headers: { 'last-event-id': 'abc' } })).status).toBe(400);
    expect((await h.call('/events/live?from=-3')).status).toBe(400);
  });

  it('ends open feeds when the server closes', async () => {
    const { res } = await open('/events/live');
    const body = res.text();
    await h.server.close();
    await expect(body).resolves.toContain(': connected');
  });
});

async function subscribers(h: Harness): Promise<number> {
  const text = await (await h.call('/metrics')).text();
  return Number(/^rewind_http_live_subscribers (\d+)$/m.exec(text)?.[1]);
}
