import { createRoute, z } from '@hono/zod-openapi';
import { reactionStatus, reactionStatuses, settleParked } from '../../../runtime/reactions/status.js';
import { type Api, type Deps, errors, json } from './shared.js';

const ReactionStatusSchema = z
  .object({
    name: z.string(),
    state: z.enum(['ok', 'parked']).openapi({
      description: 'ok: following the log; parked: waiting on an event its `act` could not handle, until an operator skips or retries it',
    }),
    position: z.number().int().openapi({ description: 'the last position it handled' }),
    head: z.number().int(),
    lagEvents: z.number().int(),
    parked: z
      .object({
        position: z.number().int(),
        eventId: z.string(),
        streamId: z.string(),
        type: z.string(),
        error: z.object({ name: z.string(), message: z.string(), code: z.string().optional() }),
        attempts: z.number().int(),
        at: z.string().openapi({ format: 'date-time' }),
      })
      .nullable()
      .openapi({ description: 'the event it waits on, why, and since when' }),
    skipped: z.number().int().openapi({ description: 'events an operator skipped' }),
    heldBy: z
      .object({ owner: z.string(), until: z.string().openapi({ format: 'date-time' }) })
      .nullable()
      .openapi({ description: 'the runtime or worker running it now (holding its lease), if any' }),
  })
  .openapi('ReactionStatus');

const NameParam = z.object({
  name: z
    .string()
    .min(1)
    .max(200)
    .openapi({ param: { name: 'name', in: 'path' }, example: 'notify-reviewer' }),
});

const list = createRoute({
  method: 'get',
  path: '/reactions',
  summary: 'Every reaction that has run against this log: position, lag, the event it is parked on, who runs it',
  tags: ['reactions'],
  responses: { 200: json(z.object({ reactions: z.array(ReactionStatusSchema) }), 'one entry per reaction'), ...errors() },
});

const one = createRoute({
  method: 'get',
  path: '/reactions/{name}',
  summary: 'Status of one reaction',
  tags: ['reactions'],
  request: { params: NameParam },
  responses: { 200: json(ReactionStatusSchema, 'its status'), ...errors(400, 404) },
});

const settle = (how: 'skip' | 'retry') =>
  createRoute({
    method: 'post',
    path: `/reactions/{name}/${how}`,
    summary:
      how === 'skip'
        ? 'Go past the event a reaction is parked on, without acting on it'
        : 'Try the event a reaction is parked on again, with fresh attempts',
    description:
      "Recorded in the reaction's control stream (with the reason and actor given); the process running the reaction goes on " +
      'within moments. 409 REACTION_STATE, with nothing written, when the reaction is not parked.',
    tags: ['reactions'],
    request: {
      params: NameParam,
      // Required as every body is (application/json, so that no other site's page can send it); {} when there is nothing to say.
      body: {
        required: true,
        content: {
          'application/json': {
            schema: z.strictObject({
              reason: z.string().trim().min(1).optional().openapi({ description: 'why: recorded in the log' }),
              actor: z.string().min(1).optional().openapi({ description: 'who: recorded in the log' }),
            }),
          },
        },
      },
    },
    responses: { 200: json(ReactionStatusSchema, 'its status once recorded'), ...errors(400, 403, 404, 409, 413, 415) },
  });

/** Read from the log alone (no reaction code needed here); skip and retry are an operator's word, written to the log. */
export function registerReactionRoutes(app: Api, { store }: Deps): void {
  app.openapi(list, async (c) => c.json({ reactions: await reactionStatuses(store) }, 200));

  app.openapi(one, async (c) => c.json(await reactionStatus(store, c.req.valid('param').name), 200));

  for (const how of ['skip', 'retry'] as const) {
    app.openapi(settle(how), async (c) => {
      const { name } = c.req.valid('param');
      const { reason, actor } = c.req.valid('json');
      return c.json(await settleParked(store, name, how, { ...(actor ? { actor } : {}), ...(reason ? { reason } : {}) }), 200);
    });
  }
}
