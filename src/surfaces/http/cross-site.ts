import type { Context, MiddlewareHandler } from 'hono';
import { problem } from './errors.js';

/**
 * Requests that act (every method but GET, HEAD and OPTIONS) are refused when
 * a browser says they come from a page that is not this server's own. A page
 * on any site may send a "simple" POST (no body, or a form) to 127.0.0.1
 * without asking first; the Host check stops DNS rebinding, not that.
 *
 * - `Sec-Fetch-Site` (every current browser sends it): `same-origin` and
 *   `none` (the user typed the address) pass; `cross-site` is refused, and so
 *   is `same-site`: a page on another port of 127.0.0.1, or on any other name
 *   under localhost, is the same site, and those are exactly the pages (a dev
 *   server, a notebook, another tool) this server must not take orders from.
 * - `Origin` (sent by browsers on every POST, also by older ones without
 *   Sec-Fetch-Site) must name the host and port the request is addressed to
 *   (`Host`). Programs (curl, scripts, the CLI) send neither header, and pass.
 *
 * Bearer tokens do not replace this: it applies with them too.
 */
export function refuseCrossSite(): MiddlewareHandler {
  return async (c, next) => {
    if (!acts(c.req.method)) return next();
    const site = c.req.header('sec-fetch-site');
    if (site !== undefined && site !== 'same-origin' && site !== 'none') {
      return refuse(c, `the browser says this request comes from a page on another site (Sec-Fetch-Site: ${site})`);
    }
    const origin = c.req.header('origin');
    if (origin !== undefined && !sameHost(origin, c.req.header('host'))) {
      return refuse(c, `this request comes from a page at ${origin} (Origin), not from this server (${c.req.header('host') ?? 'no Host'})`);
    }
    return next();
  };
}

/** Methods that change something: everything but reading. */
export function acts(method: string): boolean {
  return method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';
}

function refuse(c: Context, why: string): Response {
  return problem(c, 403, {
    code: 'CROSS_SITE',
    message: `refused: ${why}; this server acts only on requests from its own pages`,
    hint: 'use the debugger at the address this server answers on, or call the API from a program (curl, a script), which sends no Origin; a reverse proxy in front must pass the Host header through',
  });
}

// A Host header as clients send it: a name or an IPv4 address, or an IPv6 address in brackets, and perhaps a port.
const HOST = /^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

/** Whether an Origin (`http://127.0.0.1:4600`) names the same host and port as a Host header (`127.0.0.1:4600`). */
export function sameHost(origin: string, host: string | undefined): boolean {
  if (host === undefined || !HOST.test(host)) return false;
  let page: URL;
  try {
    page = new URL(origin);
  } catch {
    return false; // "null" (a sandboxed page, a file) and anything else that is not an origin
  }
  if ((page.protocol !== 'http:' && page.protocol !== 'https:') || page.origin !== origin.toLowerCase()) return false;
  // Read under the page's scheme, so that a default port written out (":80" for http) compares equal to none.
  return new URL(`${page.protocol}//${host}`).host === page.host;
}
