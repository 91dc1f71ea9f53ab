/**
 * An MCP server that lets an agent use Rewind on its own run: list its
 * checkpoints, read its history and its state at a point, roll itself back
 * (the same protocol as an operator's rollback: compensations run, newest
 * first) and, from inside the run, record a checkpoint.
 *
 * Two ways to host it:
 *
 * - Beside the runs (`rewind mcp`, or createMcpServer({ runtime })): tools
 *   take a runId, or act on one run only when `runId` is given (`--run`).
 *   `rollback` is runtime.rollback(): RollbackRequested is recorded, the
 *   process driving the run loses its next append and stops, and this
 *   runtime carries out the compensations (it needs the workflow code).
 *
 * - Inside the run (createMcpServer({ runtime, ctx })), made in `run` and
 *   connected to the agent's MCP client in memory: every tool acts on
 *   ctx.runId and goes through ctx, so it is journaled and replays.
 *
 * Why `checkpoint` exists only inside the run: a checkpoint is an entry in
 * the run's journal, matched by order on replay like every ctx call. Written
 * from outside, it would be an entry the code never asks for, and the next
 * replay would stop with a non-determinism error. Inside, the tool is
 * ctx.checkpoint(label), called by the agent's own tool loop, whose model
 * answers are themselves journaled (rewind/ai-sdk), so a replay calls it again
 * at the same point.
 *
 * Rolling back from inside is a step that fails on purpose, named
 * `mcp:rollback`, under the policy { rollbackTo: label, after }: the log shows
 * RollbackRequested with trigger step-failed / mcp:rollback and the agent's
 * reason; the compensations run, then `run` starts over (after 'retry') and
 * the code sees ctx.lastRollback. The tool call answers with an error result
 * (the run is halted) and the run unwinds at its next ctx call.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { RewindError } from '../../events/errors.js';
import {
  type At,
  MAX_RUNS_PAGE,
  RUN_STATUSES,
  type RunContext,
  type RunHistory,
  type Runtime,
  reactionStatuses,
  runStreamId,
} from '../../runtime/index.js';
import { isJsonObject } from '../../runtime/model/index.js';
import { RUN_ORDERS } from '../../store/run-index.js';
import type { EventStore } from '../../store/types.js';

export interface McpServerOptions {
  runtime: Runtime;
  /** Default runtime.store. */
  store?: EventStore;
  /** Only this run: the tools take no runId. */
  runId?: string;
  /** Hosted inside this run: tools act on ctx.runId through ctx, and `checkpoint` is offered. */
  ctx?: RunContext<any, any>;
  /** Default 'rewind'. */
  name?: string;
}

const VERSION = '0.1.0';

/** Thrown by the `mcp:rollback` step: its message is the agent's reason. */
export class AgentRollbackRequest extends Error {
  override name = 'AgentRollbackRequest';
}

export function createMcpServer(options: McpServerOptions): McpServer {
  const { runtime, ctx } = options;
  const store = options.store ?? runtime.store;
  const scoped = ctx?.runId ?? options.runId;
  const server = new McpServer({ name: options.name ?? 'rewind', version: VERSION });
  const runIdShape: Record<string, z.ZodString> = scoped ? {} : { runId: z.string().min(1).describe('the run to act on') };
  const runOf = (args: object): string => scoped ?? (args as { runId: string }).runId;
  // Inside the run, what the agent reads is journaled too: a replay hands the code the same answers.
  const read = <T>(name: string, fn: () => Promise<T>): Promise<T> => (ctx ? ctx.step(`mcp:${name}`, fn) : fn());

  server.registerTool(
    'list_checkpoints',
    {
      description:
        'Checkpoints of the run (known-good points it can be rolled back to), oldest first. ' +
        'effective: false means a later rollback undid it.',
      inputSchema: { ...runIdShape },
      annotations: { readOnlyHint: true },
    },
    (args) =>
      answer(async () => {
        const history = await read('list_checkpoints', () => runtime.history(runOf(args)));
        return { runId: history.runId, version: history.version, checkpoints: history.checkpoints };
      }),
  );

  server.registerTool(
    'history',
    {
      description:
        "The run's events (newest last) with their status (effective / rolled_back / marker), its checkpoints, " +
        'and its rollbacks with their reasons. Long runs: page with fromVersion and limit.',
      inputSchema: {
        ...runIdShape,
        fromVersion: z.number().int().positive().optional().describe('first event version to list (default: the last `limit`)'),
        limit: z.number().int().positive().max(1000).default(100).describe('events to list'),
        includeData: z.boolean().default(false).describe("include each event's data"),
      },
      annotations: { readOnlyHint: true },
    },
    (args) =>
      answer(async () => {
        const history = await read('history', () => runtime.history(runOf(args)));
        return summarise(history, args.fromVersion, args.limit, args.includeData);
      }),
  );

  server.registerTool(
    'state_at',
    {
      description: "The run's state at a point: give exactly one of version, label (a checkpoint) or time (ISO-8601). None: now.",
      inputSchema: {
        ...runIdShape,
        version: z.number().int().positive().optional(),
        label: z.string().min(1).optional(),
        time: z.string().min(1).optional(),
      },
      annotations: { readOnlyHint: true },
    },
    (args) =>
      answer(async () => {
        const given = [args.version, args.label, args.time].filter((v) => v !== undefined);
        if (given.length > 1) throw new Error('give one of version, label or time, not several');
        const runId = runOf(args);
        const at: At =
          args.version !== undefined
            ? args.version
            : args.label !== undefined
              ? { label: args.label }
              : args.time !== undefined
                ? { time: args.time }
                : { version: await store.streamVersion(runStreamId(runId)) };
        return read('state_at', () => runtime.stateAt(runId, at));
      }),
  );

  if (ctx) {
    server.registerTool(
      'checkpoint',
      {
        description:
          'Record a known-good point of your run under a label, to roll back to if what follows goes wrong. ' +
          'Take one before anything risky or hard to undo.',
        inputSchema: { label: z.string().min(1).max(200).describe("a name for this point, e.g. 'plan-approved'") },
      },
      (args) =>
        answer(async () => {
          await ctx.checkpoint(args.label);
          return { runId: ctx.runId, label: args.label, recorded: true };
        }),
    );
    server.registerTool(
      'rollback',
      {
        description:
          'Undo your run back to a checkpoint: every step after it is compensated (its real-world effect undone), newest first, ' +
          'then the run starts over from the top with the rollback visible to its code. Use when you made a mistake. ' +
          'Make no further calls after this one: your run is halted.',
        inputSchema: {
          to: z.string().min(1).default('latest').describe("a checkpoint label, 'latest', or 'start' (start: undo everything and fail)"),
          reason: z.string().min(1).describe('why: recorded in the log and shown to the next attempt'),
        },
        annotations: { destructiveHint: true },
      },
      (args) =>
        answer(async () => {
          const policy = args.to === 'start' ? ('compensate-and-fail' as const) : { rollbackTo: args.to, after: 'retry' as const };
          await ctx.step(
            'mcp:rollback',
            () => {
              throw new AgentRollbackRequest(args.reason);
            },
            { onFailure: policy },
          );
          return { rolledBack: false };
        }),
    );
  } else {
    server.registerTool(
      'rollback',
      {
        description:
          "Roll the run back to a checkpoint through Rewind's protocol: every step after it is compensated (its real-world " +
          "effect undone), newest first, then the run stops there ('stop', default), continues at once ('retry') or fails ('fail').",
        inputSchema: {
          ...runIdShape,
          to: z.union([z.string().min(1), z.number().int().positive()]).describe("a checkpoint label or version, 'latest' or 'start'"),
          reason: z.string().min(1).describe('why: recorded in the log'),
          after: z.enum(['stop', 'retry', 'fail']).default('stop'),
        },
        annotations: { destructiveHint: true },
      },
      (args) =>
        answer(async () => {
          const info = await runtime.rollback(runOf(args), { to: args.to, reason: args.reason, after: args.after });
          return { runId: info.runId, status: info.status, version: info.version, rollbacks: info.rollbacks, attention: info.attention };
        }),
    );
    server.registerTool(
      'signal_run',
      {
        description:
          "Send a signal to a run: what its ctx.waitFor(name) waits for (another agent's answer, a webhook's result), " +
          "or a decision on an approval it asks for (name 'approval:<label>', payload { approved, reason }). " +
          'Kept until the run waits for it; wakes the run if it waits.',
        inputSchema: {
          ...runIdShape,
          name: z.string().min(1).describe('the signal the run waits for'),
          payload: z.any().optional().describe('any JSON (default null)'),
          actor: z.string().min(1).optional().describe('who sends it: recorded in the log'),
        },
      },
      (args) =>
        answer(async () => {
          const info = await runtime.signal(runOf(args), args.name, args.payload ?? null, args.actor ? { actor: args.actor } : {});
          return { runId: info.runId, status: info.status, version: info.version, waiting: info.waiting };
        }),
    );
    if (!scoped) {
      server.registerTool(
        'list_runs',
        {
          description:
            "Runs in the store with their status, by id or (order 'newest' / 'oldest') by start time: a page of them, and `next` to pass as `after` for the next page.",
          inputSchema: {
            status: z.enum(RUN_STATUSES).optional(),
            workflow: z.string().optional(),
            idPrefix: z.string().optional(),
            order: z.enum(RUN_ORDERS).optional(),
            after: z.string().optional(),
            limit: z.number().int().min(1).max(MAX_RUNS_PAGE).optional(),
          },
          annotations: { readOnlyHint: true },
        },
        (args) =>
          answer(() =>
            runtime.listPage({
              status: args.status,
              workflow: args.workflow,
              idPrefix: args.idPrefix,
              order: args.order,
              after: args.after,
              limit: args.limit,
            }),
          ),
      );
      server.registerTool(
        'list_reactions',
        {
          description:
            'Reactions that follow the log (defineReaction) and have run against this store: position, events behind, who runs each, ' +
            "and for one parked on an event (its act kept failing) that event and the error. An operator skips or retries it ('rewind reactions').",
          inputSchema: {},
          annotations: { readOnlyHint: true },
        },
        () => answer(async () => ({ reactions: await reactionStatuses(store) })),
      );
    }
  }
  return server;
}

async function answer(fn: () => Promise<unknown>): Promise<CallToolResult> {
  try {
    return { content: [{ type: 'text', text: JSON.stringify(await fn(), null, 2) }] };
  } catch (error) {
    // Catching a halt (the run's own rollback, a cancel) is safe: the pass stays halted and throws it again at the next ctx call.
    const e = error as Error;
    const code = error instanceof RewindError ? ` [${error.code}]` : '';
    return { isError: true, content: [{ type: 'text', text: `${e?.name ?? 'Error'}${code}: ${e?.message ?? String(error)}` }] };
  }
}

function summarise(history: RunHistory, fromVersion: number | undefined, limit: number, includeData: boolean) {
  const start = fromVersion !== undefined ? fromVersion - 1 : Math.max(0, history.events.length - limit);
  const events = history.events.slice(start, start + limit).map((e) => {
    const data = isJsonObject(e.data) ? e.data : {};
    const name = typeof data.name === 'string' ? data.name : typeof data.label === 'string' ? data.label : undefined;
    return {
      version: e.version,
      type: e.type,
      ...(name ? { name } : {}),
      status: e.status,
      ...(e.undoneBy ? { undoneBy: e.undoneBy } : {}),
      recordedAt: e.recordedAt,
      ...(includeData ? { data: e.data } : {}),
    };
  });
  const { events: _all, ...rest } = history;
  return { ...rest, events, shown: { from: events[0]?.version ?? null, to: events.at(-1)?.version ?? null, of: history.events.length } };
}
