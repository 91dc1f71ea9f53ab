import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { jsonTextNestsDeeperThan, MAX_JSON_DEPTH } from '../../events/json-depth.js';
import { acts } from './cross-site.js';
import { problem } from './errors.js';
import type { Api, Env } from './routes/shared.js';

/**
 * A route that declares a body (in its OpenAPI definition, required or not)
 * takes it as `Content-Type: application/json` and nothing else: a request
 * without one is refused rather than read as `{}`. A browser cannot send that
 * type to another origin without asking first (CORS), which this server never
 * grants, so the rule also keeps pages of other sites out.
 *
 * The body is then looked at before it is parsed: nested deeper than
 * MAX_JSON_DEPTH, it is refused with the same 400 at every depth, before
 * anything that recurses (the parser, validation, the store) walks it.
 */
export function jsonBodies(app: Api): MiddlewareHandler<Env> {
  // Read on the first request, when every route is registered.
  let declared: Set<string> | undefined;
  return async (c, next) => {
    if (!acts(c.req.method)) return next();
    declared ??= routesWithBodies(app);
    const route = endpointOf(c);
    if (route === undefined || !declared.has(`${c.req.method} ${route}`)) return next();
    const type = c.req.header('content-type');
    if (!isJson(type)) return unsupported(c, `${c.req.method} ${documented(route)}`, type);
    if (jsonTextNestsDeeperThan(await c.req.text(), MAX_JSON_DEPTH)) return tooDeep(c);
    return next();
  };
}

/** The route pattern that answers the request (`/runs/:runId/fork`): the last matched handler that is not middleware. */
export function endpointOf(c: Context): string | undefined {
  return [...matchedRoutes(c)].reverse().find((r) => r.method !== 'ALL')?.path;
}

/** `METHOD /pattern` of every route whose definition has a request body, in Hono's pattern form. */
function routesWithBodies(app: Api): Set<string> {
  const out = new Set<string>();
  for (const definition of app.openAPIRegistry.definitions) {
    if (definition.type !== 'route' || definition.route.request?.body === undefined) continue;
    out.add(`${definition.route.method.toUpperCase()} ${definition.route.path.replaceAll(/\{(\w+)\}/g, ':$1')}`);
  }
  return out;
}

function isJson(type: string | undefined): boolean {
  return type?.split(';')[0]?.trim().toLowerCase() === 'application/json';
}

function documented(route: string): string {
  return route.replaceAll(/:(\w+)/g, '{$1}');
}

function unsupported(c: Context, route: string, type: string | undefined): Response {
  return problem(c, 415, {
    code: 'UNSUPPORTED_MEDIA_TYPE',
    message: `${route} takes a JSON body, and the request's Content-Type is ${type === undefined ? 'missing' : JSON.stringify(type)}`,
    hint: 'send Content-Type: application/json with a JSON body ({} when every field is left out)',
  });
}

function tooDeep(c: Context): Response {
  const issue = { field: 'body', message: `nested more than ${MAX_JSON_DEPTH} levels deep` };
  return problem(c, 400, {
    code: 'VALIDATION',
    message: `invalid request: ${issue.field}: ${issue.message}`,
    hint: `JSON here may nest ${MAX_JSON_DEPTH} levels at most: flatten the value`,
    issues: [issue],
  });
}
