import { createRoute, z } from '@hono/zod-openapi';
import { streamEvents } from '../sse.js';
import { eventFilter } from './events.js';
import { type Api, type Deps, errors, integerQuery, typesQuery } from './shared.js';

const live = createRoute({
  method: 'get',
  path: '/events/live',
  summary: 'Follow new events as server-sent events',
  description:
    'Each message has `id` = the global position and `data` = the event as JSON. Without `from` the feed starts after the current head. ' +
    'A reconnecting EventSource sends Last-Event-ID and resumes right after it, with no gap and no repeat. Comments (`: heartbeat`) keep the connection alive.',
  tags: ['events'],
  request: {
    query: z.object({
      from: integerQuery('first global position to deliver (inclusive); default: only events appended from now on', 0),
      streamPrefix: z.string().optional().openapi({ description: 'only streams whose id starts with this' }),
      types: typesQuery,
    }),
    headers: z.object({
      'last-event-id': z
        .string()
        .regex(/^\d{1,16}$/, 'must be the position of the last event received')
        .optional()
        .openapi({ description: 'resume after this position (takes precedence over "from")' }),
    }),
  },
  responses: {
    200: { description: 'an endless text/event-stream', content: { 'text/event-stream': { schema: z.string() } } },
    ...errors(400),
  },
});

export function registerLiveRoutes(app: Api, deps: Deps): void {
  app.openapi(live, async (c) => {
    const { from, streamPrefix, types } = c.req.valid('query');
    const lastEventId = c.req.valid('header')['last-event-id'];
    const start = lastEventId !== undefined ? Number(lastEventId) + 1 : (from ?? (await deps.store.headPosition()) + 1);
    const stop = new AbortController();
    const signal = AbortSignal.any([stop.signal, c.req.raw.signal, deps.shutdown]);
    // Subscribing before the stream opens lets a refusal (a closed store) still be an HTTP status.
    const events = deps.store.subscribe({ from: start, filter: eventFilter(streamPrefix, types), signal });
    return streamEvents(c, { ...deps, events, stop });
  });
}
