import { createRoute, z } from '@hono/zod-openapi';
import type { EventEnvelope } from '../../../events/envelope.js';
import { NotFoundError } from '../../../events/errors.js';
import { type Api, type Deps, EnvelopeSchema, errors, integerQuery, json, StreamIdParam, typesQuery } from './shared.js';

const MAX_PAGE = 10_000;

const StreamInfoSchema = z
  .object({ streamId: z.string(), version: z.number().int(), head: z.string(), position: z.number().int() })
  .openapi('StreamInfo');

const NewEventSchema = z
  .strictObject({
    id: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .openapi({ description: 'idempotency key: re-appending a stored id returns the first result' }),
    type: z.string().min(1).max(200),
    data: z
      .unknown()
      .refine((value) => value !== undefined, 'is required (use null for no data)')
      .openapi({ description: 'any JSON value' }),
    schemaVersion: z.number().int().min(1).optional(),
    metadata: z.record(z.string(), z.any()).optional(),
    recordedAt: z.string().optional().openapi({ format: 'date-time', description: 'normally assigned by the store; for imports' }),
  })
  .openapi('NewEvent');

const ExpectedVersionSchema = z
  .union([z.number().int().min(0), z.enum(['any', 'no_stream', 'exists'])])
  .openapi({ description: "the stream's version before this append; default 'any'" });

const AppendBodySchema = z.strictObject({
  events: z.array(NewEventSchema).min(1),
  expectedVersion: ExpectedVersionSchema.optional(),
});

const AppendResultSchema = z
  .object({ streamId: z.string(), version: z.number().int(), position: z.number().int(), events: z.array(EnvelopeSchema) })
  .openapi('AppendResult');

const listStreams = createRoute({
  method: 'get',
  path: '/streams',
  summary: 'List streams in id order',
  tags: ['events'],
  request: {
    query: z.object({
      prefix: z.string().optional().openapi({ description: 'only streams whose id starts with this' }),
      after: z.string().optional().openapi({ description: 'stream ids after this one: pass the previous page\'s "next"' }),
      limit: integerQuery('page size (default 100)', 1, 1000),
    }),
  },
  responses: {
    200: json(z.object({ streams: z.array(StreamInfoSchema), next: z.string().optional() }), 'a page of streams'),
    ...errors(400),
  },
});

const readStream = createRoute({
  method: 'get',
  path: '/streams/{streamId}/events',
  summary: "Read a stream's events by version",
  tags: ['events'],
  request: {
    params: StreamIdParam,
    query: z.object({
      from: integerQuery('first version (inclusive); forward default 1, backward default the last', 0),
      to: integerQuery('last version (inclusive)', 0),
      direction: z.enum(['forward', 'backward']).optional(),
      limit: integerQuery(`page size (default 1000)`, 1, MAX_PAGE),
    }),
  },
  responses: {
    200: json(
      z.object({ events: z.array(EnvelopeSchema), next: z.number().int().optional() }),
      'events; "next" is the version to read from for the next page',
    ),
    ...errors(400, 404),
  },
});

const appendToStream = createRoute({
  method: 'post',
  path: '/streams/{streamId}/events',
  summary: 'Append events to a stream (idempotent by event id)',
  tags: ['events'],
  request: {
    params: StreamIdParam,
    body: { required: true, content: { 'application/json': { schema: AppendBodySchema } } },
  },
  responses: {
    200: json(AppendResultSchema, 'appended (or already stored with these ids)'),
    ...errors(400, 403, 409, 413, 415),
  },
});

const readAll = createRoute({
  method: 'get',
  path: '/events',
  summary: 'Read the whole log in position order',
  tags: ['events'],
  request: {
    query: z.object({
      from: integerQuery('first global position (inclusive); default 0', 0),
      limit: integerQuery('page size (default 1000)', 1, MAX_PAGE),
      streamPrefix: z.string().optional().openapi({ description: 'only streams whose id starts with this' }),
      types: typesQuery,
    }),
  },
  responses: {
    200: json(z.object({ events: z.array(EnvelopeSchema), next: z.number().int() }), 'events; pass "next" as "from" to continue'),
    ...errors(400),
  },
});

const ProblemSchema = z.object({
  kind: z
    .string()
    .openapi({ description: 'undecodable, hash-mismatch, missing-versions, missing-positions, missing-events, head-mismatch, …' }),
  message: z.string(),
  streamId: z.string().optional(),
  version: z.number().int().optional(),
  position: z.number().int().optional(),
  eventId: z.string().optional(),
});

const verify = createRoute({
  method: 'get',
  path: '/verify',
  summary: 'Verify the log (or one stream): chains, rows, positions and the seals in the log',
  description:
    'Always 200 when the walk completes: "ok" says whether everything holds, "problems" names each one found (stream, version, position, what). Seals are compared but not authenticated here; `rewind verify --public-key` authenticates them.',
  tags: ['events'],
  request: {
    query: z.object({ stream: z.string().min(1).optional().openapi({ description: 'only this stream (a run id is a stream too)' }) }),
  },
  responses: {
    200: json(
      z
        .object({
          ok: z.boolean(),
          streams: z.number().int(),
          events: z.number().int(),
          position: z.number().int(),
          problems: z.array(ProblemSchema),
          problemCount: z.number().int(),
          seals: z.object({
            found: z.number().int(),
            verified: z.number().int(),
            unverified: z.number().int(),
            coveredTo: z.number().int(),
          }),
        })
        .openapi('VerifyReport'),
      'the report',
    ),
    ...errors(400, 404),
  },
});

export function registerEventRoutes(app: Api, { store, metrics }: Deps): void {
  const counted = (events: EventEnvelope[]) => {
    metrics.eventsRead += events.length;
    return events;
  };

  app.openapi(listStreams, async (c) => {
    const { prefix, after, limit = 100 } = c.req.valid('query');
    const streams = await store.listStreams({ prefix, after, limit });
    const next = streams.length === limit ? streams.at(-1)?.streamId : undefined;
    return c.json({ streams, ...(next !== undefined ? { next } : {}) }, 200);
  });

  app.openapi(readStream, async (c) => {
    const { streamId } = c.req.valid('param');
    const { from, to, direction = 'forward', limit = 1000 } = c.req.valid('query');
    const events = counted(await store.read(streamId, { from, to, direction, limit }));
    if (events.length === 0 && (await store.streamVersion(streamId)) === 0) {
      throw new NotFoundError(`stream "${streamId}"`, 'list streams with GET /streams');
    }
    const last = events.at(-1);
    const next = events.length === limit && last ? last.version + (direction === 'forward' ? 1 : -1) : undefined;
    return c.json({ events, ...(next !== undefined && next > 0 ? { next } : {}) }, 200);
  });

  app.openapi(appendToStream, async (c) => {
    const { streamId } = c.req.valid('param');
    const { events, expectedVersion } = c.req.valid('json');
    const result = await store.append(streamId, events, { expectedVersion });
    metrics.eventsAppended += result.events.length;
    return c.json(result, 200);
  });

  app.openapi(readAll, async (c) => {
    const { from = 0, limit = 1000, streamPrefix, types } = c.req.valid('query');
    const filter = eventFilter(streamPrefix, types);
    const events = counted(await store.readAll({ from, limit, filter }));
    const last = events.at(-1);
    return c.json({ events, next: last ? last.position + 1 : from }, 200);
  });

  app.openapi(verify, async (c) => {
    const { stream } = c.req.valid('query');
    const report = await store.verify(stream !== undefined ? { streamId: stream } : {});
    if (stream !== undefined && report.streams === 0) throw new NotFoundError(`stream "${stream}"`, 'list streams with GET /streams');
    return c.json(report, 200);
  });
}

/** An empty `types=` means no type filter, not "no types". */
export function eventFilter(streamPrefix: string | undefined, types: string[] | undefined) {
  const anyTypes = types !== undefined && types.length > 0;
  if (streamPrefix === undefined && !anyTypes) return undefined;
  return { ...(streamPrefix !== undefined ? { streamPrefix } : {}), ...(anyTypes ? { types } : {}) };
}
