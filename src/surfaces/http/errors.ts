import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ConcurrencyError, RewindError } from '../../events/errors.js';

/** What about the server's configuration is refused. */
export type HttpConfigProblem = 'exposed' | 'token-reused' | 'token-weak' | 'port' | 'body-limit';

/**
 * The server cannot start as configured (for example: exposed beyond loopback without tokens). Nothing was
 * bound. The hint names startServer's options; `problem` lets another surface (the CLI) say it in its words.
 */
export class HttpConfigError extends RewindError {
  readonly problem: HttpConfigProblem;
  constructor(problem: HttpConfigProblem, message: string, hint?: string) {
    super('HTTP_CONFIG', message, hint);
    this.problem = problem;
  }
}

export const ProblemSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'VALIDATION' }),
      message: z.string(),
      hint: z.string().optional(),
      /** One entry per offending field, for validation errors. */
      issues: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
      /** On a concurrency conflict: the stream's version when the append was refused. */
      actualVersion: z.number().int().optional(),
      /** Quote it when reporting a 500: the server log holds the detail under this id. */
      requestId: z.string().optional(),
    }),
  })
  .openapi('Problem');

export type Problem = z.infer<typeof ProblemSchema>['error'];

export function problem(c: Context, status: ContentfulStatusCode, body: Problem): Response {
  return c.json({ error: body }, status);
}

/**
 * Errors thrown on purpose carry a code; the code decides the status. A code
 * not listed here is treated as a bug (500), so a new error class never leaks
 * its message by accident before someone decides what it means to a client.
 */
const STATUS_BY_CODE: Record<string, ContentfulStatusCode> = {
  VALIDATION: 400,
  NOT_JSON: 400,
  UNKNOWN_WORKFLOW: 400,
  NOT_FOUND: 404,
  RUN_NOT_FOUND: 404,
  CHECKPOINT_NOT_FOUND: 404,
  // A point (version, time) the run does not have.
  TIME_TRAVEL: 404,
  CONCURRENCY: 409,
  EVENT_ID_CONFLICT: 409,
  RUN_CONFLICT: 409,
  RUN_STATE: 409,
  // The run cannot be continued from there (a step or a rollback is open at that point).
  FORK_POINT: 409,
  // The run's journal no longer matches the code: nothing was written, an operator must decide.
  NON_DETERMINISM: 409,
  // A rollback past a step whose effect cannot be undone, not accepted (past: 'irreversible').
  IRREVERSIBLE_STEP: 409,
  // A reaction skipped or retried while it is not parked on an event.
  REACTION_STATE: 409,
  STORE_CLOSED: 503,
};

export function statusOf(error: unknown): ContentfulStatusCode | undefined {
  if (!(error instanceof RewindError)) return undefined;
  return STATUS_BY_CODE[error.code] ?? (error.code.endsWith('_NOT_FOUND') ? 404 : undefined);
}

/** The client-facing body of a RewindError: the message without the hint folded in, so the hint is not said twice. */
export function problemOf(error: RewindError): Problem {
  const message =
    error.hint && error.message.endsWith(` (${error.hint})`) ? error.message.slice(0, -(error.hint.length + 3)) : error.message;
  return {
    code: error.code,
    message,
    ...(error.hint ? { hint: error.hint } : {}),
    ...(error instanceof ConcurrencyError ? { actualVersion: error.actual } : {}),
  };
}

/** zod issues as `field: message` pairs, the field written the way a client wrote it (`events[0].type`). */
export function fieldIssues(issues: readonly z.core.$ZodIssue[], where: string): { field: string; message: string }[] {
  return issues.map((issue) => ({ field: fieldPath(where, issue.path), message: issue.message }));
}

function fieldPath(where: string, path: readonly PropertyKey[]): string {
  let out = where;
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : `${out ? '.' : ''}${String(key)}`;
  return out || 'body';
}

/** For the server log only: the stack when there is one. */
export function describeError(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}
