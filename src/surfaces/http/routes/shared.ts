import { type OpenAPIHono, z } from '@hono/zod-openapi';
import type { EventStore } from '../../../store/types.js';
import { ProblemSchema } from '../errors.js';
import type { Metrics } from '../metrics.js';

export type Env = { Variables: { requestId: string } };
export type Api = OpenAPIHono<Env>;

/** What every route module is given. */
export interface Deps {
  store: EventStore;
  metrics: Metrics;
  /** Aborted when the server shuts down: long-lived responses end with it. */
  shutdown: AbortSignal;
  heartbeatMs: number;
  /** Where details that must not reach a client go (500s, failed feeds). */
  log: (entry: Record<string, unknown>) => void;
}

/** A whole number in a query string. Strict digits: "1e3", " 5" and "" are refused rather than guessed at. */
export function integerQuery(description: string, min: number, max: number = Number.MAX_SAFE_INTEGER) {
  return z
    .string()
    .regex(/^\d{1,16}$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`))
    .optional()
    .openapi({ type: 'integer', minimum: min, maximum: max, description });
}

/** `types=a,b` or `types=a&types=b`. */
export const typesQuery = z
  .union([z.string(), z.array(z.string())])
  .transform((value) =>
    (Array.isArray(value) ? value : [value])
      .flatMap((v) => v.split(','))
      .map((v) => v.trim())
      .filter((v) => v.length > 0),
  )
  .optional()
  .openapi({
    type: 'array',
    items: { type: 'string' },
    description: 'only these event types: repeat the parameter or separate with commas',
  });

export const StreamIdParam = z.object({
  streamId: z
    .string()
    .min(1)
    .max(200)
    .openapi({ param: { name: 'streamId', in: 'path' }, description: 'a stream id (percent-encode any "/")', example: 'run-42' }),
});

export const EnvelopeSchema = z
  .object({
    id: z.string(),
    streamId: z.string(),
    version: z.number().int(),
    position: z.number().int(),
    type: z.string(),
    schemaVersion: z.number().int(),
    data: z.unknown(),
    metadata: z.record(z.string(), z.any()),
    recordedAt: z.string().openapi({ format: 'date-time' }),
    hash: z.string(),
  })
  .openapi('Event');

const problemContent = { 'application/json': { schema: ProblemSchema } };

/** The error answers a route can give, for the document; every one has the Problem body. */
export function errors(...statuses: (400 | 401 | 403 | 404 | 409 | 413 | 415 | 503)[]) {
  const describe: Record<number, string> = {
    400: 'invalid input: the body names each offending field',
    401: 'no valid bearer token',
    403: 'the token is read-only, the Host is not localhost, or (CROSS_SITE) the request came from a page of another site or origin',
    404: 'no such stream or run',
    409: 'a concurrent change: read again and retry',
    413: 'the request body is larger than the limit',
    415: 'the body must be sent as Content-Type: application/json',
    503: 'the store is unavailable',
  };
  const all = [401, ...statuses, 500] as const;
  return Object.fromEntries(
    all.map((status) => [status, { description: describe[status] ?? 'internal error (quote the requestId)', content: problemContent }]),
  );
}

export function json<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { 'application/json': { schema } } };
}
