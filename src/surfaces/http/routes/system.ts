import { createRoute, z } from '@hono/zod-openapi';
import { reactionStatuses } from '../../../runtime/reactions/status.js';
import { type Api, type Deps, errors, json } from './shared.js';

const health = createRoute({
  method: 'get',
  path: '/health',
  summary: 'Liveness and store reachability (no token needed)',
  tags: ['system'],
  security: [],
  responses: {
    200: json(z.object({ status: z.literal('ok') }), 'the server and its store answer'),
    503: json(z.object({ status: z.literal('unavailable') }), 'the store does not answer'),
  },
});

const metrics = createRoute({
  method: 'get',
  path: '/metrics',
  summary: 'Prometheus metrics (text exposition 0.0.4)',
  tags: ['system'],
  responses: {
    200: { description: 'metrics', content: { 'text/plain': { schema: z.string() } } },
    ...errors(),
  },
});

export const openapiRoute = createRoute({
  method: 'get',
  path: '/openapi.json',
  summary: 'This document',
  tags: ['system'],
  responses: {
    200: json(z.record(z.string(), z.unknown()), 'the OpenAPI 3.1 description of this API'),
    ...errors(),
  },
});

export function registerSystemRoutes(app: Api, deps: Deps): void {
  app.openapi(health, async (c) => {
    try {
      await deps.store.headPosition();
      return c.json({ status: 'ok' as const }, 200);
    } catch (error) {
      deps.log({ level: 'warn', msg: 'health check: the store does not answer', error: String(error) });
      return c.json({ status: 'unavailable' as const }, 503);
    }
  });

  app.openapi(metrics, async (c) => {
    const head = await deps.store.headPosition().catch(() => undefined);
    const reactions = await reactionStatuses(deps.store).catch(() => []);
    return c.text(deps.metrics.render(head, reactions), 200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
  });

  // Built on first request, when every route is registered; they do not change afterwards.
  let document: ReturnType<typeof openApiDocument> | undefined;
  app.openapi(openapiRoute, (c) => {
    document ??= openApiDocument(app);
    return c.json(document, 200);
  });
}

export function openApiDocument(app: Api) {
  return app.getOpenAPI31Document({
    openapi: '3.1.0',
    info: {
      title: 'Rewind',
      version: '1',
      description:
        'The log and the runs of a Rewind store. Errors answer with {"error":{"code","message","hint"}}. ' +
        'Send Authorization: Bearer <token> when the server has tokens: a read token may GET, an admin token may also POST. ' +
        'A POST from a web page of another site or origin (Sec-Fetch-Site, Origin) is refused with 403 CROSS_SITE, and bodies are Content-Type: application/json, nested 1000 levels at most.',
    },
    security: [{ bearer: [] }],
  });
}
