import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { EventEnvelope } from '../../events/envelope.js';
import { describeError } from './errors.js';
import type { Metrics } from './metrics.js';

export interface LiveFeed {
  /** Must end when `stop` aborts: the client went away, or the server is closing. */
  events: AsyncIterable<EventEnvelope>;
  stop: AbortController;
  heartbeatMs: number;
  metrics: Metrics;
  log: (entry: Record<string, unknown>) => void;
}

/**
 * Server-sent events, one per log event: `id` is the global position (so a
 * reconnecting EventSource sends it back as Last-Event-ID), `data` the
 * envelope as JSON. Heartbeat comments keep proxies from closing an idle
 * connection and let the server notice a client that went away.
 */
export function streamEvents(c: Context, feed: LiveFeed): Response {
  return streamSSE(c, async (stream) => {
    stream.onAbort(() => feed.stop.abort());
    const heartbeat = setInterval(() => void stream.write(': heartbeat\n\n'), feed.heartbeatMs);
    feed.metrics.subscribers++;
    try {
      // Flushes the headers now: a client learns it is connected before the first event.
      await stream.write(': connected\n\n');
      for await (const event of feed.events) {
        await stream.writeSSE({ id: String(event.position), data: JSON.stringify(event) });
        feed.metrics.eventsRead++;
      }
    } catch (error) {
      // The status line is gone already; say so in-band and keep the detail in the log.
      const requestId = c.get('requestId') as string | undefined;
      feed.log({ level: 'error', msg: 'live feed failed', requestId, error: describeError(error) });
      await stream.writeSSE({
        event: 'error',
        data: JSON.stringify({ error: { code: 'INTERNAL', message: 'internal error', requestId } }),
      });
    } finally {
      clearInterval(heartbeat);
      feed.stop.abort();
      feed.metrics.subscribers--;
    }
  });
}
