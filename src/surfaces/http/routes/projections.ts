import { createRoute, z } from '@hono/zod-openapi';
import { NotFoundError } from '../../../events/errors.js';
import type { Projections } from '../../../projections/index.js';
import { type Api, errors, json } from './shared.js';

const ProjectionStatusSchema = z
  .object({
    name: z.string(),
    mode: z.enum(['inline', 'async']),
    version: z.number().int(),
    activeVersion: z.number().int().openapi({ description: 'the version that built the model queries see' }),
    state: z.enum(['ok', 'failed', 'rebuilding', 'stale']),
    position: z.number().int(),
    head: z.number().int(),
    lagEvents: z.number().int(),
    lagSeconds: z.number(),
    lastEventAt: z.string().nullable(),
    error: z.object({ message: z.string(), position: z.number().int() }).nullable(),
    rebuild: z.object({ version: z.number().int(), position: z.number().int() }).nullable(),
  })
  .openapi('ProjectionStatus');

const NameParam = z.object({
  name: z
    .string()
    .min(1)
    .max(200)
    .openapi({ param: { name: 'name', in: 'path' }, example: 'runs' }),
});

const list = createRoute({
  method: 'get',
  path: '/projections',
  summary: 'Status of every read model: position, lag behind the head, last error, rebuild in progress',
  tags: ['projections'],
  responses: { 200: json(z.object({ projections: z.array(ProjectionStatusSchema) }), 'one entry per projection'), ...errors() },
});

const one = createRoute({
  method: 'get',
  path: '/projections/{name}',
  summary: 'Status of one read model',
  tags: ['projections'],
  request: { params: NameParam },
  responses: { 200: json(ProjectionStatusSchema, 'its status'), ...errors(400, 404) },
});

/** Read-only: rebuilding is an operator's act (`rewind projections rebuild`), not something a web page should start. */
export function registerProjectionRoutes(app: Api, projections: Projections): void {
  app.openapi(list, async (c) => c.json({ projections: await projections.status() }, 200));

  app.openapi(one, async (c) => {
    const { name } = c.req.valid('param');
    const status = (await projections.status()).find((s) => s.name === name);
    if (!status) throw new NotFoundError(`projection "${name}"`, 'list them with GET /projections');
    return c.json(status, 200);
  });
}
