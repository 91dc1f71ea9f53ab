import type { Command } from 'commander';
import { ValidationError } from '../../../events/errors.js';
import { type AnyProjection, checkDefinitions } from '../../../projections/definition.js';
import { openProjections, type ProjectionStatus } from '../../../projections/projections.js';
import { builtInProjections } from '../../../runtime/read-models.js';
import { type GlobalOptions, withStore } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { importUserModule } from '../load-module.js';
import { colour, printJson, table } from '../output.js';
import { progressBar } from '../progress.js';

interface ProjectionOptions {
  projections?: string;
}

/**
 * `rewind projections status|rebuild`. The projections are Rewind's built-in
 * read models plus, with --projections <module>, the application's own: a
 * module whose `projections` (or default) export is an array of definitions.
 */
export function registerProjectionCommands(program: Command): void {
  const group = program
    .command('projections')
    .description('read models built from the log: status and rebuild')
    .option('--projections <module>', 'also load the projection definitions exported (as `projections` or default) by this module');

  group
    .command('status')
    .description('position, lag behind the head and last error of each projection')
    .addHelpText(
      'after',
      '\nExamples:\n  rewind projections status\n  rewind projections status --projections ./dist/projections.js --json',
    )
    .action(async (_opts, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions & ProjectionOptions>();
      const definitions = await loadDefinitions(options.projections);
      const statuses = await withStore(
        options,
        async (store) => {
          const projections = await openProjections(store, definitions, { readOnly: true });
          return projections.status();
        },
        'read',
      );
      if (options.json) return printJson(statuses);
      console.log(table(statuses.map(statusRow), ['projection', 'mode', 'version', 'state', 'position', 'behind', 'lag', 'error']));
      const advice = adviceFor(statuses, options.projections);
      if (advice.length > 0) console.log(`\n${advice.map((line) => colour.dim(line)).join('\n')}`);
    });

  group
    .command('catch-up')
    .description('apply what the projections have not seen yet, once, up to the head of the log')
    .argument('[names...]', 'only these projections (default: all)')
    .addHelpText(
      'after',
      [
        '',
        'A stopped projection (its handler threw) starts again at the event it stopped at: fix the handler first.',
        '`rewind worker` keeps the built-in read models caught up continuously.',
        '',
        'Examples:',
        '  rewind projections catch-up',
        '  rewind projections catch-up orders --projections ./dist/projections.js',
      ].join('\n'),
    )
    .action(async (names: string[], _opts, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions & ProjectionOptions>();
      const definitions = await loadDefinitions(options.projections);
      const statuses = await withStore(options, async (store) => {
        const projections = await openProjections(store, definitions);
        try {
          const chosen = names.length > 0 ? names : definitions.map((d) => d.name);
          for (const status of await projections.status())
            if (chosen.includes(status.name) && status.state === 'failed') await projections.resume(status.name);
          await projections.catchUp(chosen);
          return (await projections.status()).filter((s) => chosen.includes(s.name));
        } finally {
          await projections.close();
        }
      });
      if (options.json) return printJson(statuses);
      console.log(table(statuses.map(statusRow), ['projection', 'mode', 'version', 'state', 'position', 'behind', 'lag', 'error']));
      process.exitCode = statuses.some((s) => s.state === 'failed') ? EXIT.failed : EXIT.ok;
    });

  group
    .command('rebuild')
    .description('rebuild a projection from position 0 into a fresh generation, swapped in when caught up')
    .argument('<name>', 'the projection')
    .addHelpText('after', '\nQueries keep seeing the current model until the swap.\n\nExamples:\n  rewind projections rebuild runs')
    .action(async (name: string, _opts, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions & ProjectionOptions>();
      const definitions = await loadDefinitions(options.projections);
      const bar = progressBar(' {bar} {percentage}% | {value}/{total} positions | {rate}/s | {eta_formatted} left', options.json);
      const started = performance.now();
      let last = { processed: 0, total: 0, rate: 0 };
      let barStarted = false;
      try {
        await withStore(options, async (store) => {
          const projections = await openProjections(store, definitions);
          await projections.rebuild(name, {
            onProgress: (p) => {
              last = p;
              const rate = Math.round(p.rate).toLocaleString('en-US');
              if (!bar) return;
              if (!barStarted) bar.start(p.total, p.processed, { rate });
              barStarted = true;
              bar.setTotal(p.total);
              bar.update(p.processed, { rate });
            },
          });
          await projections.close();
        });
      } finally {
        bar?.stop();
      }
      const seconds = (performance.now() - started) / 1000;
      if (options.json) return printJson({ projection: name, rebuilt: true, positions: last.processed, seconds });
      console.log(
        `${colour.green('✓')} ${colour.bold(name)} rebuilt over ${last.processed.toLocaleString('en-US')} positions in ${seconds.toFixed(1)}s`,
      );
    });
}

/** What to do about the projections that are not current, in commands. */
function adviceFor(statuses: readonly ProjectionStatus[], module: string | undefined): string[] {
  const also = module ? ` --projections ${module}` : '';
  const behind = statuses.filter((s) => s.state === 'ok' && s.lagEvents > 0).map((s) => s.name);
  const failed = statuses.filter((s) => s.state === 'failed');
  const pending = statuses.filter((s) => s.state === 'stale' || s.state === 'rebuilding').map((s) => s.name);
  const advice: string[] = [];
  if (behind.length > 0) {
    advice.push(
      `${behind.join(', ')} ${behind.length === 1 ? 'is' : 'are'} behind the log: \`rewind projections catch-up${also}\` applies the rest once; \`rewind worker\` keeps the built-in ones live`,
    );
  }
  for (const s of failed) {
    advice.push(
      `${s.name} stopped at position ${s.error?.position}: fix its handler, then \`rewind projections catch-up ${s.name}${also}\` starts again there`,
    );
  }
  if (pending.length > 0) {
    advice.push(
      `${pending.join(', ')}: a rebuild for the new version is pending; \`rewind projections catch-up${also}\` finishes it and swaps it in`,
    );
  }
  return advice;
}

function statusRow(s: ProjectionStatus): string[] {
  const state = s.state === 'ok' ? colour.green('ok') : s.state === 'failed' ? colour.red('failed') : colour.yellow(s.state);
  const version = s.activeVersion === s.version ? String(s.version) : `${s.activeVersion}→${s.version}`;
  const error = s.error ? `at ${s.error.position}: ${s.error.message.slice(0, 60)}` : '';
  return [s.name, s.mode, version, state, String(s.position), String(s.lagEvents), `${s.lagSeconds.toFixed(1)}s`, error];
}

/** The built-in read models, plus those of --projections <module>. */
export async function loadDefinitions(module: string | undefined): Promise<AnyProjection[]> {
  const all: AnyProjection[] = [...builtInProjections];
  if (module !== undefined) {
    const loaded = await importUserModule(module, '--projections');
    const found = loaded.projections ?? loaded.default;
    if (!Array.isArray(found))
      throw new ValidationError(`${module} must export an array of projection definitions as \`projections\` or default`);
    all.push(...(found as AnyProjection[]));
  }
  checkDefinitions(all);
  return all;
}
