import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { HttpConfigError, problem } from './errors.js';

export type Role = 'read' | 'admin';

/** Bearer tokens: a read token may GET; an admin token may also change things (POST). */
export interface Tokens {
  admin?: string | string[];
  read?: string | string[];
}

const MIN_TOKEN_LENGTH = 16;

interface Credential {
  digest: Buffer;
  role: Role;
}

export interface Auth {
  /** False when no token is configured: every request is admin (allowed on loopback only). */
  readonly enabled: boolean;
  roleOf(authorization: string | undefined): Role | undefined;
}

export function createAuth(tokens: Tokens | undefined): Auth {
  validateTokens(tokens);
  const credentials: Credential[] = [
    ...list(tokens?.admin).map((token) => ({ digest: sha256(token), role: 'admin' as const })),
    ...list(tokens?.read).map((token) => ({ digest: sha256(token), role: 'read' as const })),
  ];
  const admins = new Set(list(tokens?.admin));
  for (const token of list(tokens?.read)) {
    if (admins.has(token))
      throw new HttpConfigError(
        'token-reused',
        'the same token is configured as read-only and admin',
        'give tokens.admin and tokens.read different tokens',
      );
  }
  return {
    enabled: credentials.length > 0,
    roleOf(authorization) {
      const presented = /^Bearer +(\S+) *$/i.exec(authorization ?? '')?.[1];
      if (presented === undefined) return undefined;
      // Digests have one length whatever was presented, so the comparison
      // time tells nothing about the tokens; every credential is compared so
      // the count of tokens is not measurable either.
      const digest = sha256(presented);
      let role: Role | undefined;
      for (const credential of credentials) {
        if (timingSafeEqual(digest, credential.digest) && role !== 'admin') role = credential.role;
      }
      return role;
    },
  };
}

/**
 * Reading needs any token, changing needs an admin token. Without configured
 * tokens the server only listens on loopback (see server.ts), where the Host
 * check below keeps web pages on other origins from reaching it through DNS
 * rebinding.
 */
export function authMiddleware(auth: Auth, isPublic: (path: string) => boolean): MiddlewareHandler {
  return async (c, next) => {
    if (isPublic(c.req.path)) return next();
    if (!auth.enabled) {
      if (!isLoopbackHost(c.req.header('host'))) {
        return problem(c, 403, {
          code: 'FORBIDDEN_HOST',
          message: 'this server answers only requests addressed to localhost',
          hint: 'configure tokens to expose it under another name',
        });
      }
      return next();
    }
    const role = auth.roleOf(c.req.header('authorization'));
    if (role === undefined) {
      c.header('WWW-Authenticate', 'Bearer realm="rewind"');
      return problem(c, 401, {
        code: 'UNAUTHORIZED',
        message: 'a valid bearer token is required',
        hint: 'send Authorization: Bearer <token> (the read or admin token given to rewind serve)',
      });
    }
    if (role !== 'admin' && !isReadOnly(c.req.method)) {
      return problem(c, 403, { code: 'FORBIDDEN', message: 'this token is read-only', hint: 'use an admin token to change anything' });
    }
    return next();
  };
}

export function validateTokens(tokens: Tokens | undefined): void {
  for (const token of [...list(tokens?.admin), ...list(tokens?.read)]) {
    if (typeof token !== 'string' || token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
      throw new HttpConfigError(
        'token-weak',
        `a token must be at least ${MIN_TOKEN_LENGTH} characters without spaces`,
        'generate one with: openssl rand -hex 32',
      );
    }
  }
}

function isReadOnly(method: string): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS';
}

export function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '');
  return isLoopbackAddress(name.replace(/^\[|\]$/g, ''));
}

export function isLoopbackAddress(address: string): boolean {
  const name = address.toLowerCase();
  return name === 'localhost' || name === '::1' || /^127(\.\d{1,3}){3}$/.test(name) || /^::ffff:127(\.\d{1,3}){3}$/.test(name);
}

function list(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
