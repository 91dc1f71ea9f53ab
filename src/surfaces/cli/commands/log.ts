import type { Command } from 'commander';
import { NotFoundError, ValidationError } from '../../../events/errors.js';
import type { EventStore } from '../../../store/types.js';
import { type GlobalOptions, withStore } from '../context.js';
import { colour, printJson, safe, table } from '../output.js';

/** Commands over the raw log: streams, events. */
export function registerLogCommands(program: Command): void {
  program
    .command('streams')
    .description('list streams with their version')
    .option('--prefix <prefix>', 'only streams whose id starts with this')
    .option('--limit <n>', 'at most this many', parseCount, 100)
    .addHelpText('after', '\nExamples:\n  rewind streams --prefix run-')
    .action(async (opts: { prefix?: string; limit: number }, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions>();
      const streams = await withStore(options, (store) => store.listStreams({ prefix: opts.prefix, limit: opts.limit }), 'read');
      if (options.json) return printJson(streams);
      if (streams.length === 0) return console.log(colour.dim('no streams'));
      console.log(
        table(
          streams.map((s) => [safe(s.streamId), String(s.version), String(s.position)]),
          ['stream', 'version', 'last position'],
        ),
      );
    });

  program
    .command('events')
    .description("print a stream's events (or the whole log with --all)")
    .argument('[stream]', 'the stream to read')
    .option('--all', 'read the whole log in position order')
    .option('--from <n>', 'first version (or position with --all)', parseCount)
    .option('--limit <n>', 'at most this many', parseCount, 1000)
    .addHelpText('after', '\nExamples:\n  rewind events run-42\n  rewind events --all --from 100 --json')
    .action(async (stream: string | undefined, opts: { all?: boolean; from?: number; limit: number }, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions>();
      if (!stream && !opts.all) throw new ValidationError('name a stream, or pass --all for the whole log');
      const events = await withStore(
        options,
        async (store) => {
          if (opts.all) return store.readAll({ from: opts.from, limit: opts.limit });
          const events = await store.read(stream as string, { from: opts.from, limit: opts.limit });
          if (events.length === 0 && (await store.streamVersion(stream as string)) === 0)
            throw await streamNotFound(store, stream as string);
          return events;
        },
        'read',
      );
      if (options.json) return printJson(events);
      console.log(
        table(
          events.map((e) => [
            String(e.position),
            safe(`${e.streamId}@${e.version}`),
            colour.cyan(safe(e.type)),
            e.recordedAt,
            JSON.stringify(e.data).slice(0, 80),
          ]),
          ['pos', 'stream@version', 'type', 'recorded', 'data'],
        ),
      );
    });
}

/** A stream that does not exist, with a hint for the usual slip: a run id where its stream (`run-<id>`) was meant. */
export async function streamNotFound(store: EventStore, stream: string): Promise<NotFoundError> {
  const asRun = `run-${stream}`;
  const hint =
    (await store.streamVersion(asRun)) > 0
      ? `a run's stream is "run-<id>": try \`rewind events ${asRun}\` (or \`rewind show ${stream}\`)`
      : 'list streams with `rewind streams` (a run\'s stream is "run-<id>")';
  return new NotFoundError(`stream "${stream}"`, hint);
}

export function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new ValidationError(`"${value}" is not a whole number`);
  return n;
}
