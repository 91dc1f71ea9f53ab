import { createRoute, z } from '@hono/zod-openapi';
import { type At, RunNotFoundError, type Runtime, runStreamId } from '../../../runtime/index.js';
import { type Api, type Deps, errors, integerQuery, json } from './shared.js';

const RunIdParam = z.object({
  runId: z
    .string()
    .min(1)
    .max(200)
    .openapi({ param: { name: 'runId', in: 'path' }, example: 'trip-42' }),
});

const PointSchema = z
  .union([
    z.strictObject({ version: z.number().int().min(1) }),
    z.strictObject({ label: z.string().min(1) }),
    z.strictObject({ time: z.string().min(1).openapi({ format: 'date-time' }) }),
  ])
  .openapi('Point', { description: 'a stream version, a checkpoint label, or a time (the newest event recorded at or before it)' });

const pointQuery = z
  .object({
    version: integerQuery('a stream version', 1),
    label: z.string().min(1).optional().openapi({ description: 'a checkpoint label' }),
    time: z.string().min(1).optional().openapi({ description: 'an ISO-8601 time: the newest event recorded at or before it' }),
  })
  .refine((q) => [q.version, q.label, q.time].filter((v) => v !== undefined).length <= 1, {
    message: 'give at most one of version, label and time',
    path: ['version'],
  });

const anyJson = z.any();

const history = createRoute({
  method: 'get',
  path: '/runs/{runId}/history',
  summary: 'Every event marked effective, rolled back (and by which marker) or marker; checkpoints and rollbacks with why',
  tags: ['time travel'],
  request: { params: RunIdParam },
  responses: {
    200: json(
      z
        .object({
          runId: z.string(),
          workflow: z.string(),
          version: z.number().int(),
          forkedFrom: z.object({ runId: z.string(), version: z.number().int() }).optional(),
          events: z.array(
            z.object({
              version: z.number().int(),
              position: z.number().int(),
              id: z.string(),
              type: z.string(),
              recordedAt: z.string(),
              data: anyJson,
              status: z.enum(['effective', 'rolled_back', 'marker']),
              undoneBy: z.number().int().optional(),
            }),
          ),
          checkpoints: z.array(z.record(z.string(), anyJson)),
          rollbacks: z.array(z.record(z.string(), anyJson)),
          pendingRollback: z.record(z.string(), anyJson).optional(),
        })
        .openapi('RunHistory'),
      'the marked history',
    ),
    ...errors(400, 404),
  },
});

const stateAt = createRoute({
  method: 'get',
  path: '/runs/{runId}/state',
  summary: 'The state as it was at a version, a checkpoint label or a time (default: the last event)',
  description:
    "A later rollback does not change what the state was. Needs the workflow's reducer: 400 UNKNOWN_WORKFLOW when this server lacks its code.",
  tags: ['time travel'],
  request: { params: RunIdParam, query: pointQuery },
  responses: {
    200: json(
      z
        .object({
          runId: z.string(),
          version: z.number().int(),
          recordedAt: z.string(),
          type: z.string().openapi({ description: 'the event the point resolved to' }),
          state: anyJson,
          fromCheckpoint: z.object({ label: z.string(), version: z.number().int() }).optional(),
        })
        .openapi('StateAt'),
      'the state there',
    ),
    ...errors(400, 404),
  },
});

const fork = createRoute({
  method: 'post',
  path: '/runs/{runId}/fork',
  summary: "Start a new run with this one's history up to a point, under other input or another registered workflow",
  tags: ['time travel'],
  request: {
    params: RunIdParam,
    body: {
      required: true,
      content: {
        'application/json': {
          schema: z.strictObject({
            at: PointSchema.optional().openapi({ description: "where the fork branches off; default the original's last event" }),
            runId: z.string().min(1).max(200).optional().openapi({ description: "the fork's id; generated when absent" }),
            input: anyJson.optional().openapi({ description: "other input; default the original's" }),
            workflow: z
              .string()
              .min(1)
              .max(200)
              .optional()
              .openapi({ description: "a registered workflow's name; default the original's" }),
          }),
        },
      },
    },
  },
  responses: {
    202: json(z.record(z.string(), anyJson).openapi({ description: 'RunInfo of the fork' }), 'the fork, written and started'),
    ...errors(400, 403, 404, 409, 413, 415),
  },
});

const diff = createRoute({
  method: 'get',
  path: '/runs/{runId}/diff/{otherRunId}',
  summary: 'The first divergent effective event of two runs, and a structural diff of their states',
  tags: ['time travel'],
  request: {
    params: RunIdParam.extend({
      otherRunId: z
        .string()
        .min(1)
        .max(200)
        .openapi({ param: { name: 'otherRunId', in: 'path' } }),
    }),
    query: z
      .object({
        version: integerQuery('compare the first run at this version (with otherVersion)', 1),
        otherVersion: integerQuery('compare the other run at this version (with version)', 1),
        label: z.string().min(1).optional().openapi({ description: 'compare both runs at this checkpoint label' }),
      })
      .refine((q) => (q.version === undefined) === (q.otherVersion === undefined), {
        message: 'give version and otherVersion together',
        path: ['otherVersion'],
      })
      .refine((q) => q.label === undefined || q.version === undefined, { message: 'give a label or versions, not both', path: ['label'] }),
  },
  responses: {
    200: json(
      z
        .object({
          a: z.object({ runId: z.string(), workflow: z.string(), version: z.number().int() }),
          b: z.object({ runId: z.string(), workflow: z.string(), version: z.number().int() }),
          relation: z.record(z.string(), anyJson),
          sharedEvents: z.number().int(),
          sharesNothing: z.boolean(),
          identical: z.boolean(),
          firstDivergence: z.record(z.string(), anyJson).optional(),
          state: z.object({ a: anyJson, b: anyJson, diff: anyJson }).optional(),
          summary: z.string(),
        })
        .openapi('RunDiff'),
      'the comparison',
    ),
    ...errors(400, 404),
  },
});

/** Time travel: the runtime reads; the server only translates points and answers. */
export function registerTimeTravelRoutes(app: Api, { store }: Deps, runtime: Runtime): void {
  app.openapi(history, async (c) => c.json(await runtime.history(c.req.valid('param').runId), 200));

  app.openapi(stateAt, async (c) => {
    const { runId } = c.req.valid('param');
    const { version, label, time } = c.req.valid('query');
    let at: At;
    if (label !== undefined) at = { label };
    else if (time !== undefined) at = { time };
    else if (version !== undefined) at = { version };
    else {
      const end = await store.streamVersion(runStreamId(runId));
      if (end === 0) throw new RunNotFoundError(runId);
      at = { version: end };
    }
    return c.json(await runtime.stateAt(runId, at), 200);
  });

  app.openapi(fork, async (c) => {
    const { runId } = c.req.valid('param');
    const { at, runId: forkId, input, workflow } = c.req.valid('json');
    const info = await runtime.fork(runId, { at, runId: forkId, input, workflow, detach: true });
    return c.json(info, 202);
  });

  app.openapi(diff, async (c) => {
    const { runId, otherRunId } = c.req.valid('param');
    const { version, otherVersion, label } = c.req.valid('query');
    const at: At | [At, At] | undefined =
      label !== undefined
        ? { label }
        : version !== undefined && otherVersion !== undefined
          ? [{ version }, { version: otherVersion }]
          : undefined;
    return c.json(await runtime.diff(runId, otherRunId, at ? { at } : {}), 200);
  });
}
