import { randomUUID } from 'node:crypto';
import { serveStatic } from '@hono/node-server/serve-static';
import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { RewindError } from '../../events/errors.js';
import type { Projections } from '../../projections/index.js';
import type { Runtime, Workflow } from '../../runtime/index.js';
import type { EventStore } from '../../store/types.js';
import { authMiddleware, createAuth, type Tokens } from './auth.js';
import { refuseCrossSite } from './cross-site.js';
import { DEFAULT_BODY_LIMIT } from './defaults.js';
import { describeError, fieldIssues, HttpConfigError, problem, problemOf, statusOf } from './errors.js';
import { endpointOf, jsonBodies } from './json-body.js';
import { Metrics } from './metrics.js';
import { registerEventRoutes } from './routes/events.js';
import { registerLiveRoutes } from './routes/live.js';
import { registerProjectionRoutes } from './routes/projections.js';
import { registerReactionRoutes } from './routes/reactions.js';
import { registerRunRoutes } from './routes/runs.js';
import type { Api, Deps, Env } from './routes/shared.js';
import { registerSystemRoutes } from './routes/system.js';
import { registerTimeTravelRoutes } from './routes/time-travel.js';
import { DEBUGGER_CSP, securityHeaders } from './security-headers.js';

export { DEFAULT_BODY_LIMIT };

export interface AppOptions {
  store: EventStore;
  /** Adds the /runs routes. Runs it starts or acts on are driven in this process. */
  runtime?: Runtime;
  /**
   * The workflows POST /runs may start: registered with the runtime, and each
   * described in the OpenAPI document with the input it accepts (its `input`
   * schema). Without them any registered workflow may be started, described as
   * taking any input.
   */
  workflows?: readonly Workflow[];
  /** Adds GET /projections (status only). */
  projections?: Projections;
  /** How long a run action (rollback, retry, resume…) may take before the answer is 202 and it goes on (default 5 s). */
  actionWaitMs?: number;
  /** Bearer tokens; without any, every request may read and write (server.ts allows that on loopback only). */
  tokens?: Tokens;
  /** Largest accepted request body in bytes (default 1 MiB); larger ones get 413. */
  bodyLimit?: number;
  /** Prebuilt files (the web debugger) served at `/` without a token: they hold no data, the API calls they make do. */
  staticDir?: string;
  /** Interval of the live feed's keep-alive comments (default 15 s). */
  heartbeatMs?: number;
  /** Ends live feeds when aborted, so a server can close without waiting on them. */
  signal?: AbortSignal;
  /** Receives one object per server-side problem; default: a JSON line on stderr. */
  log?: (entry: Record<string, unknown>) => void;
}

export interface RewindApp {
  app: Api;
  metrics: Metrics;
}

/** Paths that need no token. */
const PUBLIC_PATHS = new Set(['/health']);

export function createApp(options: AppOptions): RewindApp {
  const limit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1)
    throw new HttpConfigError('body-limit', `bodyLimit must be a positive number of bytes, got ${limit}`);
  const auth = createAuth(options.tokens);
  const metrics = new Metrics();
  const log = options.log ?? ((entry) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`));
  const deps: Deps = {
    store: options.store,
    metrics,
    shutdown: options.signal ?? new AbortController().signal,
    heartbeatMs: options.heartbeatMs ?? 15_000,
    log,
  };

  const app: Api = new OpenAPIHono<Env>({
    defaultHook: (result, c) => {
      if (result.success) return;
      // Body fields are named as the client wrote them (events[0].type); the others say where they were (query.limit).
      const issues = fieldIssues(result.error.issues, result.target === 'json' ? '' : result.target);
      return problem(c, 400, {
        code: 'VALIDATION',
        message: `invalid request: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`,
        issues,
      });
    },
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });

  app.use('*', observe(metrics));
  app.use('*', securityHeaders());
  // Before anything reads the body: a page of another site gets nothing but the refusal.
  app.use('*', refuseCrossSite());
  app.use('*', bodyLimit({ maxSize: limit, onError: (c) => tooLarge(c, limit) }));
  if (options.staticDir) app.use('*', staticFiles(options.staticDir));
  app.use(
    '*',
    authMiddleware(auth, (path) => PUBLIC_PATHS.has(path)),
  );
  app.use('*', jsonBodies(app));

  registerSystemRoutes(app, deps);
  registerEventRoutes(app, deps);
  registerLiveRoutes(app, deps);
  registerReactionRoutes(app, deps);
  if (options.projections) registerProjectionRoutes(app, options.projections);
  if (options.runtime) {
    const workflows = options.workflows ?? [];
    for (const workflow of workflows) options.runtime.register(workflow);
    registerRunRoutes(app, { ...deps, runtime: options.runtime, workflows, actionWaitMs: options.actionWaitMs ?? 5000 });
    registerTimeTravelRoutes(app, deps, options.runtime);
  }

  app.notFound((c) =>
    problem(c, 404, { code: 'NOT_FOUND', message: `no route ${c.req.method} ${c.req.path}`, hint: 'see GET /openapi.json' }),
  );
  app.onError((error, c) => answerError(error, c, log));
  return { app, metrics };
}

/** Request id, counts and latency by route pattern and status. */
function observe(metrics: Metrics): MiddlewareHandler<Env> {
  return async (c, next) => {
    const started = performance.now();
    const requestId = randomUUID();
    c.set('requestId', requestId);
    await next();
    c.header('X-Request-Id', requestId);
    const route = endpointOf(c) ?? 'unmatched';
    metrics.observeRequest(c.req.method, route, c.res.status, (performance.now() - started) / 1000);
  };
}

function tooLarge(c: Context, limit: number): Response {
  // The rest of the body may still be on the wire; a socket in that state must not be reused for another request.
  c.header('Connection', 'close');
  return problem(c, 413, {
    code: 'PAYLOAD_TOO_LARGE',
    message: `the request body is larger than ${limit} bytes`,
    hint: 'send fewer events per request',
  });
}

/** Serves a file when one exists under the path, under the debugger's Content-Security-Policy; otherwise the request goes on to the API. */
function staticFiles(root: string): MiddlewareHandler {
  const serve = serveStatic({ root });
  return async (c, next) => {
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') return next();
    let toApi = false;
    const file = await serve(c, async () => {
      toApi = true;
      await next();
    });
    if (toApi || !file) return;
    file.headers.set('Content-Security-Policy', DEBUGGER_CSP);
    return file;
  };
}

function answerError(error: unknown, c: Context<Env>, log: Deps['log']): Response {
  const status = statusOf(error);
  if (status !== undefined && error instanceof RewindError) return problem(c, status, problemOf(error));
  if (error instanceof HTTPException && error.status < 500) {
    return problem(c, error.status as ContentfulStatusCode, { code: codeOfHttpStatus(error.status), message: error.message });
  }
  const requestId = c.get('requestId');
  log({ level: 'error', msg: 'request failed', requestId, method: c.req.method, path: c.req.path, error: describeError(error) });
  return problem(c, 500, {
    code: 'INTERNAL',
    message: 'internal error',
    hint: 'the server log has the detail under this requestId',
    requestId,
  });
}

function codeOfHttpStatus(status: number): string {
  if (status === 400) return 'BAD_REQUEST';
  if (status === 413) return 'PAYLOAD_TOO_LARGE';
  if (status === 415) return 'UNSUPPORTED_MEDIA_TYPE';
  return `HTTP_${status}`;
}
