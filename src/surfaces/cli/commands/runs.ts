import { type Command, InvalidArgumentError, Option } from 'commander';
import type { EventEnvelope } from '../../../events/envelope.js';
import { NotFoundError, ValidationError } from '../../../events/errors.js';
import { openProjections } from '../../../projections/index.js';
import {
  asRunEvent,
  createRuntime,
  isRunStatus,
  MAX_RUNS_PAGE,
  RUN_STATUSES,
  RunEvents,
  type RunInfo,
  type RunOrder,
  type RunStatus,
  type Runtime,
  runStreamId,
} from '../../../runtime/index.js';
import { type RunDoc, runsProjection } from '../../../runtime/read-models.js';
import { RUN_ORDERS } from '../../../store/run-index.js';
import type { EventStore } from '../../../store/types.js';
import { type Access, type GlobalOptions, isReadOnlyFile, requireExistingLog, storeUrl, withStore } from '../context.js';
import { loadExamples } from '../examples.js';
import { exitCodeForRun } from '../exit-codes.js';
import { age, colour, plural, printIndexProgress, printJson, safe, table } from '../output.js';
import { runsFromLog } from '../runs-from-log.js';
import { renderTimeline, STATUS_COLOUR, timelineOf } from '../timeline.js';
import { loadWorkflows } from '../workflows.js';
import { parseCount } from './log.js';

export interface WorkflowOption {
  workflows?: string;
}

/** A runtime over the --db store that knows the --workflows code, closed afterwards. */
export async function withRuntime<T>(
  options: GlobalOptions & WorkflowOption,
  fn: (runtime: Runtime, store: EventStore) => Promise<T>,
  access: Access = 'write',
): Promise<T> {
  const workflows = await loadWorkflows(options.workflows);
  return withStore(
    options,
    async (store) => {
      const runtime = createRuntime({ store, workflows });
      try {
        return await fn(runtime, store);
      } finally {
        await runtime.close();
      }
    },
    access,
  );
}

/** The first free `travel-<n>`, so the demo's run ids are short enough to type in the commands it suggests. */
async function nextDemoId(store: EventStore): Promise<string> {
  let n = 1;
  while ((await store.streamVersion(runStreamId(`travel-${n}`))) > 0) n++;
  return `travel-${n}`;
}

/** What an operator's action did to the outside world: the compensations it ran (newest step first), failed or resolved. */
export interface CompensationReport {
  step: string;
  outcome: 'compensated' | 'failed' | 'resolved by hand';
  error?: string;
}

function compensationsIn(events: readonly EventEnvelope[]): CompensationReport[] {
  const steps = new Map<string, string>();
  const out: CompensationReport[] = [];
  for (const event of events) {
    const e = asRunEvent(event);
    if (!e) continue;
    if ('step' in e.data && 'stepKey' in e.data) steps.set(e.data.stepKey, e.data.step);
    if (e.type === RunEvents.CompensationCompleted) out.push({ step: e.data.step, outcome: 'compensated' });
    else if (e.type === RunEvents.CompensationFailed && e.data.final) {
      out.push({ step: e.data.step, outcome: 'failed', error: e.data.error.message });
    } else if (e.type === RunEvents.ResolvedByHand) {
      out.push({ step: steps.get(e.data.stepKey) ?? e.data.stepKey, outcome: 'resolved by hand' });
    }
  }
  return out;
}

export const paintStatus = (status: string) => (STATUS_COLOUR[status] ?? ((s: string) => s))(status);

/** Commands over runs: demo, runs, show, rollback, retry, resolve, cancel, resume. */
export function registerRunCommands(program: Command): void {
  program
    .command('demo')
    .description('run the travel-booking example: a hotel is full, the run rolls back (refund, cancel flight) and retries')
    .addHelpText('after', '\nExamples:\n  rewind demo\n  rewind demo --db sqlite:/tmp/demo.db --json')
    .action(async (_opts, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions>();
      const { runTravelDemo } = await loadExamples();
      await withStore(options, async (store) => {
        const { runId, info, world } = await runTravelDemo(store, { runId: await nextDemoId(store) });
        const events = await store.read(runStreamId(runId));
        if (options.json) return printJson({ runId, status: info.status, state: info.state, timeline: timelineOf(events) });
        console.log(`${colour.bold('Rewind demo')}: a travel agent books a flight, charges the card, then a hotel.`);
        console.log(`The first hotel is full, so the run rolls back to its "planned" checkpoint, compensating newest first,`);
        console.log(`and the agent retries with another hotel. Rolled-back events stay in the log, marked ${colour.dim('↶')}.\n`);
        console.log(`run ${colour.bold(runId)} on ${storeUrl(options)}\n`);
        console.log(renderTimeline(timelineOf(events)));
        console.log(`\nstatus ${paintStatus(info.status)}  state ${JSON.stringify(info.state)}`);
        console.log(
          `outside world: flights ${JSON.stringify(Object.fromEntries(world.flights))}, payments ${JSON.stringify(Object.fromEntries(world.payments))}`,
        );
        console.log(
          colour.dim(
            `\nnext: rewind runs · rewind show ${runId} · rewind verify · rewind rollback ${runId} --to planned --reason "try again"`,
          ),
        );
      });
    });

  program
    .command('runs')
    .description('list runs, newest first: a page of the runs index, each with its steps and errors from the runs read model')
    .option('--status <status>', `only runs in this status (${RUN_STATUSES.join(', ')})`)
    .option('--workflow <name>', 'only runs of this workflow')
    .option('--order <order>', `${RUN_ORDERS.join(', ')}`, 'newest')
    .option('--after <cursor>', 'the page after this one (the "next" a page printed)')
    .option('--limit <n>', 'at most this many', parseCount, 100)
    .addHelpText(
      'after',
      '\nExamples:\n  rewind runs\n  rewind runs --status needs_attention --json\n  rewind runs --workflow travel --order oldest',
    )
    .action(async (opts: { status?: string; workflow?: string; order: string; after?: string; limit: number }, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions>();
      if (opts.status && !isRunStatus(opts.status)) {
        throw new ValidationError(`unknown status "${opts.status}"`, [], `use one of ${RUN_STATUSES.join(', ')}`);
      }
      requireExistingLog(options);
      const readOnly = isReadOnlyFile(options);
      const { runs, next } = await withStore(
        options,
        async (store): Promise<{ runs: RunDoc[]; next?: string }> => {
          // Which runs: a page of the runs index (an older log is indexed once, here, with its progress on stderr).
          const runtime = createRuntime({ store, onIndexProgress: printIndexProgress });
          const page = await runtime.listPage({
            ...(opts.status ? { status: opts.status as RunStatus } : {}),
            ...(opts.workflow ? { workflow: opts.workflow } : {}),
            order: opts.order as RunOrder,
            ...(opts.after ? { after: opts.after } : {}),
            limit: Math.min(opts.limit, MAX_RUNS_PAGE),
          });
          const ids = page.runs.map((r) => r.runId);
          const more = page.next ? { next: page.next } : {};
          // A file this process may not write gets no read model brought up to date: those runs are folded from the log instead.
          if (readOnly) return { runs: await runsFromLog(store, ids), ...more };
          // What they did: the read model, caught up first (what was appended since the last catch-up; a worker keeps it at zero).
          const projections = await openProjections(store, [runsProjection]);
          try {
            await projections.catchUp(['runs']);
            const docs = await Promise.all(ids.map((id) => projections.get('runs', runStreamId(id))));
            return { runs: docs.filter((d): d is RunDoc => d !== undefined), ...more };
          } finally {
            await projections.close();
          }
        },
        readOnly ? 'read' : 'write',
      );
      const filtered = Boolean(opts.status || opts.workflow);
      if (next) console.error(colour.dim(`more: rewind runs --after '${next}'${opts.order === 'newest' ? '' : ` --order ${opts.order}`}`));
      if (options.json) return printJson(runs);
      if (runs.length === 0) {
        return console.log(colour.dim(filtered ? 'no runs match' : 'no runs yet: try `rewind demo`'));
      }
      console.log(
        table(
          runs.map((r) => [
            safe(r.runId),
            `${safe(r.workflow)}@${safe(r.workflowVersion)}`,
            paintStatus(r.status),
            // Steps done so far: the run does not know how many its code has left (started attempts would count retries).
            String(r.stepsCompleted),
            String(r.rollbacks),
            r.currentStep ? safe(r.currentStep) : r.lastError ? colour.red(safe(r.lastError.slice(0, 40))) : '',
            age(r.startedAt),
            age(r.updatedAt),
          ]),
          ['run', 'workflow', 'status', 'steps done', 'rollbacks', 'now / last error', 'started', 'updated'],
        ),
      );
    });

  program
    .command('show')
    .description("a run's timeline: steps and their durations, checkpoints, rollbacks, compensations, errors")
    .argument('<run>', 'run id')
    .addHelpText('after', '\nExamples:\n  rewind show travel-1732370000000\n  rewind show my-run --json')
    .action(async (runId: string, _opts, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions>();
      await withStore(
        options,
        async (store) => {
          const events = await store.read(runStreamId(runId));
          if (events.length === 0) throw new NotFoundError(`run "${runId}"`, runNotFoundHint(runId));
          const info = await createRuntime({ store }).get(runId);
          const timeline = timelineOf(events);
          if (options.json) return printJson({ ...info, timeline });
          const id = safe(runId);
          console.log(
            `${colour.bold(id)}  ${safe(info.workflow)}@${safe(info.workflowVersion)}  ${paintStatus(info.status)}  ${plural(events.length, 'event')}\n`,
          );
          console.log(renderTimeline(timeline));
          if (info.attention) {
            console.log(
              `\n${colour.red('needs attention')}: ${info.attention.stage} of ${safe(info.attention.step)}: ${safe(info.attention.error.message)}`,
            );
            console.log(colour.dim(`  rewind retry ${id}   or   rewind resolve ${id} --note "what you did"`));
          }
          if (info.status === 'failed' && info.error) console.log(`\n${colour.red('failed')}: ${safe(info.error.message)}`);
          if (info.waiting) {
            console.log(`\n${colour.yellow('waiting')} for ${waitingFor(info.waiting)}`);
            const hint = info.waiting.approval
              ? `rewind approve ${id} ${safe(info.waiting.approval.label)}   or   rewind reject ${id} ${safe(info.waiting.approval.label)} --reason "why"`
              : `rewind signal ${id} ${safe(info.waiting.name)} --data '<json>'`;
            console.log(colour.dim(`  ${hint}`));
          }
          if (info.pointOfNoReturn)
            console.log(
              `\n${colour.magenta('point of no return')}: step ${safe(info.pointOfNoReturn.step)} at v${info.pointOfNoReturn.version} cannot be undone; a rollback before it needs --past-irreversible`,
            );
        },
        'read',
      );
    });

  /**
   * A command that acts on a run: `<run>` and the command's own positionals (a signal's name, an approval's
   * label), then the run as it now stands, what it waits for, and the compensations the act ran (a rollback's,
   * or a rejection's that the run's policy rolled back). Exit 1 when the run ended failed or needs attention.
   */
  const runCommand = (c: {
    name: string;
    description: string;
    positionals?: [string, string][];
    options?: (command: Command) => Command;
    act: (runtime: Runtime, runId: string, positionals: string[], opts: Record<string, any>) => Promise<RunInfo>;
    example: string;
  }) => {
    const command = program.command(c.name).description(c.description).argument('<run>', 'run id');
    for (const positional of c.positionals ?? []) command.argument(...positional);
    (c.options ?? ((o) => o))(command)
      .option('--workflows <module>', 'module exporting the workflow definitions (default: the bundled examples)')
      .addHelpText('after', `\nExamples:\n  ${c.example}`)
      .action(async (...given: unknown[]) => {
        const cmd = given.at(-1) as Command;
        const opts = given.at(-2) as Record<string, any>;
        const [runId, ...positionals] = given.slice(0, -2) as string[];
        const options = cmd.optsWithGlobals<GlobalOptions & WorkflowOption>();
        const { info, compensations } = await withRuntime(options, async (runtime, store) => {
          const before = await store.streamVersion(runStreamId(runId as string));
          const info = await c.act(runtime, runId as string, positionals, opts);
          return { info, compensations: compensationsIn(await store.read(runStreamId(runId as string), { from: before + 1 })) };
        });
        if (options.json) printJson({ ...info, compensations });
        else {
          const waiting = info.waiting ? ` for ${waitingFor(info.waiting)}` : '';
          console.log(`${colour.bold(safe(runId as string))} is now ${paintStatus(info.status)}${waiting}`);
          if (compensations.length > 0) console.log(`compensations, newest step first:`);
          for (const done of compensations) {
            const paint = done.outcome === 'failed' ? colour.red : colour.yellow;
            console.log(`  ${paint('⟲')} ${safe(done.step)}: ${done.outcome}${done.error ? ` (${safe(done.error)})` : ''}`);
          }
        }
        process.exitCode = exitCodeForRun(info.status);
      });
  };

  runCommand({
    name: 'rollback',
    description: 'roll a run back to a checkpoint: compensations newest first, then a RolledBack marker',
    options: (c) =>
      c
        .requiredOption('--to <label|version>', "a checkpoint label, a version, 'latest' or 'start'")
        .requiredOption('--reason <text>', 'why: recorded in the log', recorded)
        .addOption(new Option('--then <what>', 'after the rollback').choices(['stop', 'retry', 'fail']).default('stop'))
        .option('--past-irreversible', 'go back past irreversible steps, leaving their effects as they are (recorded)'),
    act: (runtime, runId, _, opts) => {
      const to = /^\d+$/.test(opts.to) ? Number(opts.to) : opts.to;
      return runtime.rollback(runId, {
        to,
        reason: opts.reason,
        after: opts.then,
        ...(opts.pastIrreversible ? { past: 'irreversible' } : {}),
      });
    },
    example: 'rewind rollback my-run --to planned --reason "hotel was wrong" --then retry',
  });
  runCommand({
    name: 'retry',
    description: "retry a run's blocked compensation (same idempotency key, fresh retry budget)",
    options: (c) => c.option('--note <text>', 'recorded with the retry'),
    act: (runtime, runId, _, opts) => runtime.retryCompensation(runId, opts.note),
    example: 'rewind retry my-run --note "refund API is back"',
  });
  runCommand({
    name: 'resolve',
    description: "record that a blocked compensation's effect was undone by hand; the rollback goes on",
    options: (c) => c.requiredOption('--note <text>', 'what was done, for the audit trail', recorded),
    act: (runtime, runId, _, opts) => runtime.resolveByHand(runId, opts.note),
    example: 'rewind resolve my-run --note "refunded in the Stripe dashboard"',
  });
  runCommand({
    name: 'cancel',
    description: 'cancel a run',
    options: (c) => c.option('--reason <text>', 'recorded in the log', 'cancelled from the CLI'),
    act: (runtime, runId, _, opts) => runtime.cancel(runId, opts.reason),
    example: 'rewind cancel my-run --reason "customer withdrew"',
  });
  runCommand({
    name: 'resume',
    description: 'drive a run forward from where its log ends (after a crash, or a rollback with --then stop)',
    act: (runtime, runId) => runtime.resume(runId),
    example: 'rewind resume my-run',
  });

  // Signals and approvals: a run's own positional name or label after the run id, and who sends it.
  const actor = (opts: Record<string, any>) => (opts.actor ? { actor: opts.actor as string } : {});
  runCommand({
    name: 'signal',
    description: 'send a signal to a run: kept until its ctx.waitFor(name) uses it, and wakes the run if it waits',
    positionals: [['<name>', 'the signal name the run waits for']],
    options: (c) =>
      c
        .option('--data <json>', 'the payload, as JSON (default null)')
        .option('--id <id>', 'the same id twice sends one signal')
        .option('--actor <name>', 'who sends it, recorded in the log'),
    act: (runtime, runId, [name], opts) => {
      let payload: unknown = null;
      if (opts.data !== undefined) {
        try {
          payload = JSON.parse(opts.data);
        } catch (error) {
          throw new ValidationError(`--data is not JSON: ${(error as Error).message}`, [], `e.g. --data '{"paid": 90}'`);
        }
      }
      return runtime.signal(runId, name as string, payload, { ...actor(opts), ...(opts.id ? { id: opts.id } : {}) });
    },
    example: 'rewind signal order-42 payment --data \'{"paid": 90}\' --actor bank-webhook',
  });
  runCommand({
    name: 'approve',
    description: 'approve what a run asks approval for (ctx.approve(label)): the run goes on',
    positionals: [['<label>', 'the approval the run waits for']],
    options: (c) => c.option('--reason <text>', 'why, recorded in the log').option('--actor <name>', 'who approves, recorded in the log'),
    act: (runtime, runId, [label], opts) =>
      runtime.approve(runId, label as string, { ...(opts.reason ? { reason: opts.reason } : {}), ...actor(opts) }),
    example: 'rewind approve order-42 large-payment --reason "budgeted" --actor ana',
  });
  runCommand({
    name: 'reject',
    description: "reject what a run asks approval for: a trigger that goes through the run's failure policy",
    positionals: [['<label>', 'the approval the run waits for']],
    options: (c) =>
      c
        .requiredOption('--reason <text>', 'why, recorded in the log', recorded)
        .option('--actor <name>', 'who rejects, recorded in the log'),
    act: (runtime, runId, [label], opts) => runtime.reject(runId, label as string, { reason: opts.reason, ...actor(opts) }),
    example: 'rewind reject order-42 large-payment --reason "not in budget" --actor cfo',
  });
}

/** Text an operator gives for the log (a reason, a note): some, not blank. */
function recorded(text: string): string {
  if (text.trim() === '') throw new InvalidArgumentError('give some text: it is recorded in the log');
  return text;
}

/** What a waiting run waits for: `approval "x"` or `signal "y"`, and until when. */
function waitingFor(w: NonNullable<RunInfo['waiting']>): string {
  const what = w.approval ? `approval "${safe(w.approval.label)}"` : `signal "${safe(w.name)}"`;
  return w.timeoutAt === undefined ? what : `${what} until ${new Date(w.timeoutAt).toISOString()}`;
}

/** Not found by run id: perhaps it was given as its stream. */
export function runNotFoundHint(runId: string): string {
  return runId.startsWith('run-')
    ? `a run id has no "run-" prefix (its stream has): try \`rewind show ${runId.slice(4)}\``
    : 'list the runs with `rewind runs`';
}
