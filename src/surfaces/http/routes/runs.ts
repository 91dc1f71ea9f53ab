import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import {
  MAX_RUNS_PAGE,
  RUN_STATUSES,
  type RunInfo,
  RunNotFoundError,
  type Runtime,
  runStreamId,
  UnknownWorkflowError,
  type Workflow,
} from '../../../runtime/index.js';
import { RUN_ORDERS } from '../../../store/run-index.js';
import { describeError } from '../errors.js';
import { type Api, type Deps, type Env, EnvelopeSchema, errors, integerQuery, json } from './shared.js';

const RunIdParam = z.object({
  runId: z
    .string()
    .min(1)
    .max(200)
    .openapi({ param: { name: 'runId', in: 'path' }, description: 'the run id (its stream is "run-<id>")', example: 'trip-42' }),
});

const RunSummarySchema = z
  .object({
    runId: z.string(),
    workflow: z.string(),
    workflowVersion: z
      .string()
      .openapi({ description: 'the version of the workflow the run started under, and goes on under until it ends' }),
    status: z.enum(RUN_STATUSES),
    waitingFor: z.string().optional().openapi({ description: 'the signal a waiting run waits for (approval:<label> for an approval)' }),
    version: z.number().int(),
    startedAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('RunSummary');

const ErrorInfoSchema = z.object({ name: z.string(), message: z.string(), code: z.string().optional() }).catchall(z.any());

const RollbackInfoSchema = z
  .object({
    version: z.number().int(),
    targetVersion: z.number().int(),
    label: z.string(),
    unreached: z
      .string()
      .optional()
      .openapi({ description: 'the label its failure policy asked for, which the run had not reached: it went to `label` instead' }),
    reason: z.string(),
    trigger: z.object({ kind: z.string(), step: z.string().optional(), error: ErrorInfoSchema.optional() }),
  })
  .openapi('RollbackInfo');

const RunInfoSchema = RunSummarySchema.extend({
  state: z
    .any()
    .openapi({ description: "the reducer's state over the effective history; absent when this server does not know the workflow" }),
  input: z.any(),
  output: z.any().optional(),
  error: ErrorInfoSchema.optional(),
  rollbacks: z.array(RollbackInfoSchema),
  attention: z
    .object({ step: z.string(), stepKey: z.string(), stage: z.string(), error: ErrorInfoSchema })
    .optional()
    .openapi({ description: 'why the run needs attention, when it does' }),
  waiting: z
    .object({
      name: z.string(),
      timeoutAt: z.number().optional(),
      approval: z.object({ label: z.string(), details: z.any().optional() }).optional(),
    })
    .optional()
    .openapi({ description: 'what the run waits for, when it does: a signal, or an approval with what the reviewer is shown' }),
  pointOfNoReturn: z
    .object({ step: z.string(), stepKey: z.string(), version: z.number().int() })
    .optional()
    .openapi({ description: 'the newest irreversible step: a rollback before it needs past: "irreversible"' }),
}).openapi('RunInfo');

/** 200 when the action finished within the wait, 202 when it was recorded and goes on (see act()). */
const actionAnswers = (description: string) => ({
  200: json(RunInfoSchema, description),
  202: json(RunInfoSchema, 'recorded; the run goes on (follow /events/live or poll the run)'),
});

const body = <T extends z.ZodType>(schema: T) => ({ required: true, content: { 'application/json': { schema } } });

const listRuns = createRoute({
  method: 'get',
  path: '/runs',
  summary: 'List runs: a page of the runs index, by id (default) or start time',
  tags: ['runs'],
  request: {
    query: z.object({
      status: z.enum(RUN_STATUSES).optional(),
      workflow: z.string().min(1).optional(),
      idPrefix: z.string().min(1).max(200).optional().openapi({ description: 'only runs whose id starts with this' }),
      order: z.enum(RUN_ORDERS).optional().openapi({ description: "'id' (default), 'newest' or 'oldest' (by start time)" }),
      after: z.string().optional().openapi({ description: 'where the page starts: pass the previous page\'s "next" (same order)' }),
      limit: integerQuery('page size (default 100)', 1, MAX_RUNS_PAGE),
    }),
  },
  responses: { 200: json(z.object({ runs: z.array(RunSummarySchema), next: z.string().optional() }), 'a page of runs'), ...errors(400) },
});

const runCounts = createRoute({
  method: 'get',
  path: '/run-counts',
  summary: 'How many runs there are, per status and per workflow and status',
  tags: ['runs'],
  responses: {
    200: json(
      z.object({
        total: z.number().int(),
        byStatus: z.record(z.string(), z.number().int()),
        byWorkflow: z.array(z.object({ workflow: z.string(), status: z.enum(RUN_STATUSES), runs: z.number().int() })),
      }),
      'the counts',
    ),
    ...errors(),
  },
});

const getRun = createRoute({
  method: 'get',
  path: '/runs/{runId}',
  summary: 'One run: status, state, rollbacks, attention',
  tags: ['runs'],
  request: { params: RunIdParam },
  responses: { 200: json(RunInfoSchema, 'the run'), ...errors(400, 404) },
});

const runHistory = createRoute({
  method: 'get',
  path: '/runs/{runId}/events',
  summary: "A run's history: every event of its stream, rolled-back ones included",
  tags: ['runs'],
  request: {
    params: RunIdParam,
    query: z.object({ from: integerQuery('first version (inclusive)', 0), limit: integerQuery('page size (default 1000)', 1, 10_000) }),
  },
  responses: {
    200: json(
      z.object({ events: z.array(EnvelopeSchema), next: z.number().int().optional() }),
      'events; "next" is the version to continue from',
    ),
    ...errors(400, 404),
  },
});

const StartRunId = z
  .string()
  .min(1)
  .max(200)
  .optional()
  .openapi({ description: 'the run id (default: a new UUIDv7); starting an id again is idempotent' });

/**
 * The body of POST /runs. With the server's workflows known, one variant per
 * workflow, its `input` the workflow's own schema: the OpenAPI document says what
 * each accepts, and input a workflow would refuse never reaches its first step.
 */
function startRunBody(workflows: readonly Workflow[]) {
  if (workflows.length === 0) {
    return z.strictObject({
      workflow: z.string().min(1).max(200).openapi({ description: 'a workflow the server runtime knows' }),
      input: z.any().optional(),
      runId: StartRunId,
    });
  }
  const [first, ...rest] = workflows.map((wf) =>
    z
      .strictObject({
        workflow: z.literal(wf.name),
        input: wf.input ?? z.any().optional().openapi({ description: 'any JSON: this workflow declares no input schema' }),
        runId: StartRunId,
      })
      .openapi({ title: wf.name, description: `a run of "${wf.name}" (version ${wf.version})` }),
  );
  return z.discriminatedUnion('workflow', [first as NonNullable<typeof first>, ...rest]);
}

const startRun = (workflows: readonly Workflow[]) =>
  createRoute({
    method: 'post',
    path: '/runs',
    summary: 'Start a run of a workflow this server knows (idempotent by runId)',
    description: [
      'Answers once the run is recorded; it goes on in this server. Poll GET /runs/{runId} or follow /events/live.',
      workflows.length > 0
        ? `Workflows and the input each accepts: ${workflows.map((wf) => wf.name).join(', ')} (one body schema per workflow).`
        : '',
    ]
      .filter(Boolean)
      .join(' '),
    tags: ['runs'],
    request: { body: body(startRunBody(workflows)) },
    responses: { 202: json(RunInfoSchema, 'recorded and started'), ...errors(400, 403, 409, 413, 415) },
  });

const rollback = createRoute({
  method: 'post',
  path: '/runs/{runId}/rollback',
  summary: 'Roll a run back to a checkpoint, compensating the steps after it',
  tags: ['runs'],
  request: {
    params: RunIdParam,
    body: body(
      z.strictObject({
        to: z
          .union([z.string().min(1), z.number().int().min(0)])
          .openapi({ description: "'latest', 'start', a checkpoint label, or the version of a checkpoint" }),
        reason: z.string().trim().min(1),
        after: z.enum(['stop', 'retry', 'fail']).optional().openapi({ description: "what the run does afterwards (default 'stop')" }),
        past: z.literal('irreversible').optional().openapi({
          description: 'go back past irreversible steps, leaving their effects as they are (without it, such a rollback is a 409)',
        }),
      }),
    ),
  },
  responses: { ...actionAnswers('the run after the rollback'), ...errors(400, 403, 404, 409, 413, 415) },
});

const noteBody = (required: boolean) => body(z.strictObject({ note: required ? z.string().trim().min(1) : z.string().optional() }));

const retry = createRoute({
  method: 'post',
  path: '/runs/{runId}/retry',
  summary: 'Retry the compensation a run is stuck on',
  tags: ['runs'],
  request: { params: RunIdParam, body: noteBody(false) },
  responses: { ...actionAnswers('the run after the retry'), ...errors(400, 403, 404, 409, 413, 415) },
});

const resolve = createRoute({
  method: 'post',
  path: '/runs/{runId}/resolve',
  summary: "Record that an operator undid the stuck step's effect by hand; the rollback goes on",
  tags: ['runs'],
  request: { params: RunIdParam, body: noteBody(true) },
  responses: { ...actionAnswers('the run after the rollback went on'), ...errors(400, 403, 404, 409, 413, 415) },
});

const resume = createRoute({
  method: 'post',
  path: '/runs/{runId}/resume',
  summary: 'Continue a run from where its log ends (after a crash, or a rollback that stopped)',
  tags: ['runs'],
  request: { params: RunIdParam },
  responses: { ...actionAnswers('the run after resuming'), ...errors(400, 403, 404, 409) },
});

const cancel = createRoute({
  method: 'post',
  path: '/runs/{runId}/cancel',
  summary: 'Cancel a run',
  tags: ['runs'],
  request: {
    params: RunIdParam,
    // Required as every body is (application/json, so that no other site's page can send it); {} when there is no reason.
    body: body(z.strictObject({ reason: z.string().optional() })),
  },
  responses: { ...actionAnswers('the cancelled run'), ...errors(400, 403, 404, 409, 413, 415) },
});

const signalRoute = createRoute({
  method: 'post',
  path: '/runs/{runId}/signals/{name}',
  summary: 'Send a signal: kept until the run waits for it (ctx.waitFor), and wakes the run if it waits',
  tags: ['runs'],
  request: {
    params: RunIdParam.extend({ name: z.string().min(1) }),
    body: body(
      z.strictObject({
        payload: z.any().optional().openapi({ description: 'any JSON (default null)' }),
        actor: z.string().min(1).optional().openapi({ description: 'who sends it, recorded in the log' }),
        id: z.string().min(1).optional().openapi({ description: 'the same id twice is one signal' }),
      }),
    ),
  },
  responses: { ...actionAnswers('the run after the signal'), ...errors(400, 403, 404, 409, 413, 415) },
});

const approvalRoute = createRoute({
  method: 'post',
  path: '/runs/{runId}/approvals/{label}',
  summary: "A reviewer's decision on what a run asks approval for (ctx.approve): a rejection goes through the run's failure policy",
  tags: ['runs'],
  request: {
    params: RunIdParam.extend({ label: z.string().min(1) }),
    body: body(
      z
        .strictObject({ approved: z.boolean(), reason: z.string().trim().min(1).optional(), actor: z.string().min(1).optional() })
        .refine((d) => d.approved || d.reason !== undefined, { message: 'a rejection needs a reason', path: ['reason'] }),
    ),
  },
  responses: { ...actionAnswers('the run after the decision'), ...errors(400, 403, 404, 409, 413, 415) },
});

export interface RunDeps extends Deps {
  runtime: Runtime;
  /** The workflows POST /runs starts, each described with its input schema (none: any name, checked by the runtime). */
  workflows: readonly Workflow[];
  /** How long an action may take before the answer is 202 and the run goes on without the client. */
  actionWaitMs: number;
}

export function registerRunRoutes(app: Api, deps: RunDeps): void {
  const { store, metrics, runtime } = deps;

  app.openapi(listRuns, async (c) => {
    const { status, workflow, idPrefix, order, after, limit } = c.req.valid('query');
    return c.json(await runtime.listPage({ status, workflow, idPrefix, order, after, limit }), 200);
  });

  app.openapi(runCounts, async (c) => c.json(await runtime.countRuns(), 200));

  app.openapi(getRun, async (c) => c.json(await runtime.get(c.req.valid('param').runId), 200));

  app.openapi(runHistory, async (c) => {
    const { runId } = c.req.valid('param');
    const { from, limit = 1000 } = c.req.valid('query');
    const events = await store.read(runStreamId(runId), { from, limit });
    if (events.length === 0 && (await store.streamVersion(runStreamId(runId))) === 0) throw new RunNotFoundError(runId);
    metrics.eventsRead += events.length;
    const last = events.at(-1);
    return c.json({ events, ...(events.length === limit && last ? { next: last.version + 1 } : {}) }, 200);
  });

  app.openapi(startRun(deps.workflows), async (c) => {
    const { workflow, input, runId } = c.req.valid('json');
    return c.json(await runtime.start(workflow, input ?? null, { runId, detach: true }), 202);
  });

  app.openapi(rollback, async (c) => {
    const { runId } = c.req.valid('param');
    const { to, reason, after, past } = c.req.valid('json');
    return act(c, deps, runId, runtime.rollback(runId, { to, reason, after, ...(past ? { past } : {}) }), { recordsFirst: true });
  });

  app.openapi(signalRoute, async (c) => {
    const { runId, name } = c.req.valid('param');
    const { payload, actor, id } = c.req.valid('json');
    const options = { ...(actor ? { actor } : {}), ...(id ? { id } : {}) };
    return act(c, deps, runId, runtime.signal(runId, name, payload ?? null, options), { recordsFirst: true });
  });

  app.openapi(approvalRoute, async (c) => {
    const { runId, label } = c.req.valid('param');
    const { approved, reason, actor } = c.req.valid('json');
    const who = actor ? { actor } : {};
    const decided = approved
      ? runtime.approve(runId, label, { ...(reason ? { reason } : {}), ...who })
      : runtime.reject(runId, label, { reason: reason as string, ...who });
    return act(c, deps, runId, decided, { recordsFirst: true });
  });

  app.openapi(retry, async (c) => {
    const { runId } = c.req.valid('param');
    const { note } = c.req.valid('json');
    return act(c, deps, runId, runtime.retryCompensation(runId, note), { recordsFirst: true });
  });

  app.openapi(resolve, async (c) => {
    const { runId } = c.req.valid('param');
    const { note } = c.req.valid('json');
    return act(c, deps, runId, runtime.resolveByHand(runId, note as string), { recordsFirst: true });
  });

  app.openapi(resume, async (c) => {
    const { runId } = c.req.valid('param');
    return act(c, deps, runId, runtime.resume(runId), { recordsFirst: false });
  });

  app.openapi(cancel, async (c) => {
    const { runId } = c.req.valid('param');
    const { reason } = c.req.valid('json');
    // The cancel is recorded first, then the runtime waits for the run's current step to let go.
    return act(c, deps, runId, runtime.cancel(runId, reason), { recordsFirst: false });
  });
}

/**
 * The runtime's actions record the request, then drive the run (compensations,
 * perhaps the rest of the run) before they resolve. A client waits for that
 * only so long: after `actionWaitMs` it gets 202 and the run as it stands, the
 * request being in the log either way, and failures after that go to the log.
 *
 * `recordsFirst`: the action appends its request before it needs the
 * workflow's code, so UnknownWorkflowError means "recorded, and waiting for a
 * worker that has the code", which is a 202 too, not a client error.
 */
async function act(c: Context<Env>, deps: RunDeps, runId: string, action: Promise<RunInfo>, { recordsFirst }: { recordsFirst: boolean }) {
  const waitingForAWorker = (error: unknown) => recordsFirst && error instanceof UnknownWorkflowError;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), deps.actionWaitMs);
  });
  const settled = action.then(
    (info) => ({ info }),
    (error: unknown) => ({ error }),
  );
  const outcome = await Promise.race([settled, late]);
  clearTimeout(timer);
  if (outcome === 'late') {
    const requestId = c.get('requestId');
    void settled.then((late) => {
      if ('error' in late && !waitingForAWorker(late.error)) {
        deps.log({ level: 'error', msg: 'run action failed after the answer', requestId, runId, error: describeError(late.error) });
      }
    });
    return c.json(await deps.runtime.get(runId), 202);
  }
  if ('info' in outcome) return c.json(outcome.info, 200);
  if (waitingForAWorker(outcome.error)) return c.json(await deps.runtime.get(runId), 202);
  throw outcome.error;
}
