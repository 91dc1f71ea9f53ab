import { type Command, InvalidArgumentError } from 'commander';
import { openProjections } from '../../../projections/index.js';
import type { ActionOutcome, ReactionEvent } from '../../../runtime/reactions/index.js';
import { builtInProjections } from '../../../runtime/read-models.js';
import { createWorker, type WorkerEvent } from '../../../runtime/worker.js';
import { startSealing } from '../../../store/audit/sealer.js';
import { type GlobalOptions, withStore } from '../context.js';
import { signingKeyIf } from '../keys.js';
import { colour } from '../output.js';
import { loadReactions, loadWorkflows } from '../workflows.js';

interface WorkerCommandOptions {
  workflows?: string;
  concurrency: number;
  leaseMs: number;
  graceMs: number;
  id?: string;
  projections: boolean;
  key?: string;
  seal: boolean;
  sealEvery: number;
  sealIntervalMs: number;
}

/** `rewind worker`: claims runnable runs from the store's queue and drives them until SIGINT or SIGTERM. */
export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('drive queued runs (started with detach, resumed, rolled back or retried) until interrupted')
    .option('--workflows <module>', 'module exporting the workflow definitions (default: the bundled examples)')
    .option('--concurrency <n>', 'runs driven at once', parsePositive, 4)
    .option('--lease-ms <ms>', 'how long a claim lasts without renewal; a dead worker’s runs come back after it', parsePositive, 30_000)
    .option('--grace-ms <ms>', 'on SIGINT/SIGTERM, how long running runs get to finish before they are handed back', parsePositive, 10_000)
    .option('--id <name>', 'the name this worker holds leases under (default host:pid:random)')
    .option('--no-projections', "do not keep Rewind's built-in read models (runs, steps, checkpoints, rollbacks) up to date")
    .option('--key <file>', 'seal the log with this Ed25519 private key (default $REWIND_SIGNING_KEY); without a key, no seals')
    .option('--seal-every <n>', 'seal after this many appended positions', parsePositive, 1000)
    .option('--seal-interval-ms <ms>', '…or after this long with anything new', parsePositive, 60_000)
    .option('--no-seal', 'do not seal even with a key')
    .addHelpText(
      'after',
      [
        '',
        'Several workers may share one PostgreSQL database (or, on one machine, one SQLite file):',
        'each run is driven by one worker at a time, and a run whose worker dies is taken over',
        'once its lease lapses. Reactions the module exports (defineReaction) run here too, each in one worker at a time.',
        'A second SIGINT stops at once. Workers also keep the built-in read models',
        'live (several at once is safe: each batch is written only if the projection is still where it was read).',
        'With a signing key (--key or REWIND_SIGNING_KEY) they also seal the log periodically (see `rewind seal`).',
        '',
        'Examples:',
        '  rewind worker',
        '  rewind worker --db postgres://rewind@db/rewind --workflows ./dist/workflows.js --concurrency 8',
        '  rewind worker --json | tee worker.log',
      ].join('\n'),
    )
    .action(async (opts: WorkerCommandOptions, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions & WorkerCommandOptions>();
      const workflows = await loadWorkflows(opts.workflows);
      const reactions = await loadReactions(opts.workflows);
      // Read before anything starts: a key that cannot be read stops the worker here.
      const key = opts.seal ? signingKeyIf(opts.key) : undefined;
      // Seals are reported like the worker's own events: a line per seal, or a JSON object with --json.
      const say = (event: { type: 'sealed'; position: number; covers: number } | { type: 'seal-failed'; message: string }) => {
        const at = new Date().toISOString();
        const text =
          event.type === 'sealed'
            ? `${at} ${colour.green('sealed')} the log up to position ${event.covers} (the seal is at ${event.position})`
            : `${at} ${colour.red('seal failed')}: ${event.message}`;
        process.stdout.write(`${options.json ? JSON.stringify({ at, ...event }) : text}\n`);
      };
      await withStore(options, async (store) => {
        const worker = createWorker({
          store,
          workflows,
          concurrency: opts.concurrency,
          leaseMs: opts.leaseMs,
          reactions,
          ...(opts.id ? { id: opts.id } : {}),
          onEvent: (event) =>
            process.stdout.write(`${options.json ? JSON.stringify({ at: new Date().toISOString(), ...event }) : describe(event)}\n`),
        });
        let stopping: Promise<void> | undefined;
        const done = new Promise<void>((resolve) => {
          const onSignal = (signal: NodeJS.Signals) => {
            if (stopping) {
              // Asked twice: leave now; the leases lapse and other workers take the runs over.
              process.stderr.write(`${signal} again: stopping at once\n`);
              process.exit(130);
            }
            process.stderr.write(`${signal}: finishing running runs (up to ${opts.graceMs} ms), then stopping\n`);
            stopping = worker.stop({ graceMs: opts.graceMs }).then(() => {
              process.off('SIGINT', onSignal);
              process.off('SIGTERM', onSignal);
              resolve();
            });
          };
          process.on('SIGINT', onSignal);
          process.on('SIGTERM', onSignal);
        });
        // The read models the CLI, the API and the debugger query; following the log here keeps their lag near zero.
        const projections = opts.projections ? await openProjections(store, [...builtInProjections]) : undefined;
        projections?.start();
        const sealing =
          key &&
          startSealing(store, {
            signingKey: key,
            everyEvents: opts.sealEvery,
            everyMs: opts.sealIntervalMs,
            onSeal: (seal) => say({ type: 'sealed', position: seal.position, covers: seal.digest.treeHead.position }),
            onError: (error) => say({ type: 'seal-failed', message: (error as Error)?.message ?? String(error) }),
          });
        try {
          await worker.start();
          await done;
        } finally {
          await sealing?.stop();
          await projections?.close();
        }
      });
    });
}

function describe(e: WorkerEvent): string {
  const head = `${new Date().toISOString()} ${colour.dim(e.worker)}`;
  switch (e.type) {
    case 'started':
      return `${head} ${colour.green('started')}`;
    case 'claimed':
      return `${head} ${colour.cyan('claimed')} ${e.runId} (${e.workflow}, ${e.request}, attempt ${e.attempt})`;
    case 'finished':
      return `${head} ${colour.green('finished')} ${e.runId}: ${e.status}`;
    case 'requeued':
      return `${head} ${colour.yellow('requeued')} ${e.runId}${e.status ? `: ${e.status}` : ''}, ${e.reason}; due in ${e.delayMs} ms`;
    case 'lost':
      return `${head} ${colour.yellow('lost')} ${e.runId}: another worker holds it now`;
    case 'error':
      return `${head} ${colour.red('error')}${e.runId ? ` ${e.runId}` : ''}: ${e.error.message}`;
    case 'stopped':
      return `${head} stopped`;
    case 'reaction':
      return `${head} ${describeReaction(e.event)}`;
  }
}

function describeReaction(e: ReactionEvent): string {
  const at = `reaction ${e.reaction}`;
  switch (e.type) {
    case 'acted':
    case 'undone':
      return `${colour.cyan(at)} ${e.type === 'undone' ? 'undid after a rollback' : 'acted on'} event ${e.position}: ${e.outcomes.map(outcomeText).join(', ') || 'nothing to do'}`;
    case 'retrying':
      return `${colour.yellow(at)} failed on event ${e.position} (attempt ${e.attempt}): ${e.error.message}; again in ${e.retryInMs} ms`;
    case 'parked':
      return `${colour.red(at)} parked on event ${e.position}: ${e.error.message} (rewind reactions retry|skip ${e.reaction})`;
    case 'error':
      return `${colour.red(at)} store error: ${e.error.message}`;
  }
}

function outcomeText(o: ActionOutcome): string {
  switch (o.kind) {
    case 'started':
      return `started ${o.runId}`;
    case 'signalled':
      return `signalled ${o.runId} (${o.name})${o.started ? ', started it' : ''}`;
    case 'requested':
      return `asked ${o.runId} to ${o.request}`;
    case 'refused':
      return `refused by ${o.runId}: ${o.reason}`;
  }
}

function parsePositive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}
