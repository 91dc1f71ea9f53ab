import type { Command } from 'commander';
import { type ReactionStatus, reactionStatuses, settleParked } from '../../../runtime/reactions/status.js';
import { type GlobalOptions, withStore } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { age, colour, printJson, table } from '../output.js';

interface OperatorOptions {
  reason?: string;
  actor?: string;
}

/**
 * `rewind reactions [status] | skip NAME | retry NAME`: what the log says of
 * every reaction that has run against it (no code needed), and an operator's
 * word on one parked on an event.
 */
export function registerReactionCommands(program: Command): void {
  const group = program.command('reactions').description('reactions that follow the log (defineReaction): status, skip, retry');

  group
    .command('status', { isDefault: true })
    .description('position, lag and parked event of each reaction, and who runs it')
    .addHelpText('after', '\nExamples:\n  rewind reactions\n  rewind reactions status --json')
    .action(async (_opts, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions>();
      const statuses = await withStore(options, (store) => reactionStatuses(store), 'read');
      const parked = statuses.filter((s) => s.state === 'parked');
      // A parked reaction is a failure found, with --json too (as verify and replay say theirs), for scripts that check.
      if (parked.length > 0) process.exitCode = EXIT.failed;
      if (options.json) return printJson(statuses);
      if (statuses.length === 0) {
        console.log('no reaction has run against this log yet (give them to createRuntime({ reactions }) or `rewind worker --workflows`)');
        return;
      }
      console.log(table(statuses.map(row), ['reaction', 'state', 'position', 'behind', 'held by', 'parked on']));
      for (const s of parked) console.log(`\n${colour.red(s.name)} ${parkedText(s)}`);
      if (parked.length > 0) {
        console.log(
          colour.dim(
            '\nfix the cause (or the code) and `rewind reactions retry NAME`, or go past the event: `rewind reactions skip NAME --reason …`',
          ),
        );
      }
    });

  for (const how of ['skip', 'retry'] as const) {
    group
      .command(how)
      .description(
        how === 'skip' ? 'go past the event a reaction is parked on, without acting on it' : 'try the event a reaction is parked on again',
      )
      .argument('<name>', 'the reaction')
      .option('--reason <text>', 'why, recorded in the log')
      .option('--actor <name>', 'who, recorded in the log (default $USER)')
      .addHelpText(
        'after',
        `\nRecorded in the reaction's control stream; the process running the reaction goes on within moments.\n\nExample:\n  rewind reactions ${how} notify-reviewer --reason "${how === 'skip' ? 'test event, nothing to do' : 'reviewer service is back'}"`,
      )
      .action(async (name: string, opts: OperatorOptions, cmd: Command) => {
        const options = cmd.optsWithGlobals<GlobalOptions & OperatorOptions>();
        const actor = opts.actor ?? process.env.USER;
        const status = await withStore(options, (store) =>
          settleParked(store, name, how, { ...(actor ? { actor } : {}), ...(opts.reason ? { reason: opts.reason } : {}) }),
        );
        if (options.json) return printJson(status);
        console.log(`${colour.green(how === 'skip' ? 'skipped' : 'retrying')} reaction ${name} at event ${status.position + 1}`);
      });
  }
}

function row(s: ReactionStatus): string[] {
  return [
    s.name,
    s.state === 'parked' ? colour.red('parked') : colour.green('ok'),
    String(s.position),
    String(s.lagEvents),
    s.heldBy?.owner ?? colour.dim('no one'),
    s.parked ? `${s.parked.position} (${s.parked.type})` : '',
  ];
}

function parkedText(s: ReactionStatus): string {
  const p = s.parked;
  if (!p) return '';
  return `parked ${age(p.at)} on event ${p.position} (${p.type} ${p.eventId} of ${p.streamId}) after ${p.attempts} attempt${p.attempts === 1 ? '' : 's'}: ${p.error.message}`;
}
