import type { Command } from 'commander';
import { ValidationError } from '../../../events/errors.js';
import { type GlobalOptions, withStore } from '../context.js';
import { colour, printJson, table } from '../output.js';

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
      const streams = await withStore(options, (store) => store.listStreams({ prefix: opts.prefix, limit: opts.limit }));
      if (options.json) return printJson(streams);
      if (streams.length === 0) return console.log(colour.dim('no streams'));
      console.log(
        table(
          streams.map((s) => [s.streamId, String(s.version), String(s.position)]),
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
      const events = await withStore(options, (store) =>
        opts.all
          ? store.readAll({ from: opts.from, limit: opts.limit })
          : store.read(stream as string, { from: opts.from, limit: opts.limit }),
      );
      if (options.json) return printJson(events);
      console.log(
        table(
          events.map((e) => [
            String(e.position),
            `${e.streamId}@${e.version}`,
            colour.cyan(e.type),
            e.recordedAt,
            JSON.stringify(e.data).slice(0, 80),
          ]),
          ['pos', 'stream@version', 'type', 'recorded', 'data'],
        ),
      );
    });
}

export function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new ValidationError(`"${value}" is not a whole number`);
  return n;
}
