import { ValidationError } from '../../events/errors.js';
import type { Workflow } from '../../runtime/index.js';
import { isReaction, type Reaction } from '../../runtime/reactions/definition.js';
import { loadExamples } from './examples.js';
import { importUserModule } from './load-module.js';

/**
 * The workflow code a command needs (to resume a run, or to compensate its
 * steps in a rollback): a module given with --workflows that exports
 * workflow definitions (as `workflows`, the default export, or any named
 * export), else the bundled examples so the demo's runs work out of the box.
 */
export async function loadWorkflows(modulePath?: string): Promise<Workflow[]> {
  if (!modulePath) {
    return (await loadExamples()).exampleWorkflows();
  }
  const mod = await importUserModule(modulePath, '--workflows');
  const candidates = [mod.workflows, mod.default, ...Object.values(mod)].flat();
  const found = [...new Set(candidates.filter(isWorkflow))];
  if (found.length === 0) {
    throw new ValidationError(
      `${modulePath} exports no workflow definitions`,
      [],
      'export the result of defineWorkflow(...) (or an array of them as `workflows`)',
    );
  }
  return found;
}

function isWorkflow(value: unknown): value is Workflow {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Workflow).run === 'function' &&
    typeof (value as Workflow).name === 'string'
  );
}

/** The reactions (defineReaction) the --workflows module exports, as `reactions` or any named export; none without a module. */
export async function loadReactions(modulePath?: string): Promise<Reaction[]> {
  if (!modulePath) return [];
  const mod = await importUserModule(modulePath, '--workflows');
  return [...new Set([mod.reactions, mod.default, ...Object.values(mod)].flat().filter(isReaction))];
}
