import type { MiddlewareHandler } from 'hono';
import { secureHeaders } from 'hono/secure-headers';

/**
 * The debugger's pages: its script and stylesheet from this server (Vite
 * emits one of each under assets/, no inline code), the favicon a data: URL,
 * fetch calls (the API, the live feed) to this server only; no frames, no
 * plugins, no <base>, no form posted anywhere, and no page may frame it.
 */
export const DEBUGGER_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Everything else (JSON, server-sent events, metrics) is data: it may load nothing and be framed nowhere. */
const API_CSP = { defaultSrc: ["'none'"], frameAncestors: ["'none'"] };

/**
 * On every answer, errors included: no MIME sniffing, no framing (the header
 * and CSP's frame-ancestors), no referrer, readable by this origin only
 * (Cross-Origin-Resource-Policy), and the API's CSP unless the debugger's file
 * server already set the pages' own. No Strict-Transport-Security: the server
 * speaks plain HTTP; a TLS proxy in front decides about HSTS.
 */
export function securityHeaders(): MiddlewareHandler {
  return secureHeaders({
    contentSecurityPolicy: API_CSP,
    xFrameOptions: 'DENY',
    referrerPolicy: 'no-referrer',
    strictTransportSecurity: false,
    // A header already set stays: the debugger's pages carry DEBUGGER_CSP.
    overwrite: false,
  });
}
