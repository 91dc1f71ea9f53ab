import { RewindError, ValidationError } from '../events/errors.js';
import { CHANGING_CODE_GUIDE, UnknownWorkflowError } from './errors.js';
import type { Workflow } from './workflow.js';

// Several versions of one workflow, registered at once. A run goes on under
// the version it started under (its RunStarted says which) until it ends; new
// runs start under the version registered last. Changes that old runs can
// replay need no new version: they branch on ctx.changed() (context.ts). See
// "Changing code safely" in the README.

/**
 * The run started under a version of its workflow this runtime does not have.
 * Nothing was written: the run waits, as it was, for a process that has that
 * version's code (a worker puts it back in the queue for one).
 */
export class WorkflowVersionNotFoundError extends RewindError {
  readonly workflow: string;
  readonly version: string;
  readonly registered: readonly string[];
  constructor(workflow: string, version: string, registered: readonly string[]) {
    super(
      'WORKFLOW_VERSION_NOT_FOUND',
      `workflow "${workflow}" has no version "${version}" registered (registered: ${registered.join(', ')})`,
      `a run goes on under the version it started under: register that version's code beside the new one until its runs end, or cancel them; see ${CHANGING_CODE_GUIDE}`,
    );
    this.workflow = workflow;
    this.version = version;
    this.registered = registered;
  }
}

/** The workflows a runtime knows: every registered version of each, by name. */
export class WorkflowRegistry {
  /** By name, then version; a Map keeps registration order, and the last entry is where new runs start. */
  readonly #byName = new Map<string, Map<string, Workflow>>();

  /** Adds a version (replacing the code of a version registered before); it becomes the one new runs start under. */
  register(workflow: Workflow): void {
    if (!workflow || typeof workflow.run !== 'function' || typeof workflow.name !== 'string') {
      throw new ValidationError('register() needs a workflow made by defineWorkflow()');
    }
    const versions = this.#byName.get(workflow.name) ?? new Map<string, Workflow>();
    versions.delete(workflow.version);
    versions.set(workflow.version, workflow);
    this.#byName.set(workflow.name, versions);
  }

  /** The version new runs of `name` start under: the one registered last. Undefined when none is. */
  current(name: string): Workflow | undefined {
    const versions = this.#byName.get(name);
    return versions ? [...versions.values()].at(-1) : undefined;
  }

  /** That exact version, else undefined. */
  find(name: string, version: string): Workflow | undefined {
    return this.#byName.get(name)?.get(version);
  }

  /** That version (or, without one, the current); a typed error naming what is registered when there is none. */
  get(name: string, version?: string): Workflow {
    const versions = this.#byName.get(name);
    if (!versions) throw new UnknownWorkflowError(name);
    if (version === undefined) return this.current(name) as Workflow;
    const workflow = versions.get(version);
    if (!workflow) throw new WorkflowVersionNotFoundError(name, version, [...versions.keys()]);
    return workflow;
  }

  /** The reducer to read a run's state with: its own version's, else the current one's (a reducer seldom changes with the code). */
  reducer(name: string, version?: string): Workflow | undefined {
    return (version === undefined ? undefined : this.find(name, version)) ?? this.current(name);
  }

  /** Registered versions of `name`, oldest registration first. */
  versions(name: string): string[] {
    return [...(this.#byName.get(name)?.keys() ?? [])];
  }

  names(): string[] {
    return [...this.#byName.keys()];
  }
}
