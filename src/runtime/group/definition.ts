import { ValidationError } from '../../events/errors.js';
import type { Workflow } from '../workflow.js';

export interface ParticipantDefinition {
  /** The agent's name; its run is `<groupId>.<name>`. */
  name: string;
  workflow: Workflow;
  /** Its input, or a function of the outputs of the participants before it (they run in order). Journaled once computed. */
  input?: unknown | ((outputs: Record<string, unknown>) => unknown);
  /**
   * Its vote when a group rollback to `target` is proposed, given its state
   * now: true for yes, false or a reason for no. One no and nothing is
   * compensated. An irreversible step after the target is a no on its own.
   */
  canRollback?: (target: { label: string; version: number }, state: any) => boolean | string | Promise<boolean | string>;
}

export interface GroupDefinition {
  name: string;
  participants: ParticipantDefinition[];
  /** When a participant fails (or needs attention): roll every participant back to this label, or ('fail', default) mark the group failed. */
  onFailure?: { rollbackTo: string } | 'fail';
}

/** Group ids, group and participant names. */
export const NAME = /^[A-Za-z0-9_-]{1,60}$/;

export function defineGroup(definition: GroupDefinition): Readonly<GroupDefinition> {
  const issues: string[] = [];
  if (typeof definition?.name !== 'string' || !NAME.test(definition.name)) issues.push('name must be 1-60 letters, digits, _ or -');
  if (!Array.isArray(definition?.participants) || definition.participants.length === 0)
    issues.push('participants must be a non-empty array');
  const seen = new Set<string>();
  for (const p of definition?.participants ?? []) {
    if (typeof p?.name !== 'string' || !NAME.test(p.name))
      issues.push(`participant name ${JSON.stringify(p?.name)} must be 1-60 letters, digits, _ or -`);
    else if (seen.has(p.name)) issues.push(`participant "${p.name}" appears twice`);
    else seen.add(p.name);
    if (typeof p?.workflow?.run !== 'function') issues.push(`participant "${p?.name}" needs a workflow made by defineWorkflow()`);
    if (p?.canRollback !== undefined && typeof p.canRollback !== 'function')
      issues.push(`participant "${p?.name}": canRollback must be a function (target, state) => boolean | reason`);
  }
  if (issues.length) throw new ValidationError('invalid group definition', issues);
  return Object.freeze({ ...definition });
}
