import { RewindError } from '../../events/errors.js';

/** Some participants have no effective checkpoint with the label. Nothing was written, nothing compensated. */
export class LabelMissingError extends RewindError {
  readonly groupId: string;
  readonly label: string;
  readonly missing: readonly string[];
  constructor(groupId: string, label: string, missing: string[]) {
    super(
      'LABEL_MISSING',
      `group "${groupId}" cannot roll back to "${label}": ${missing.map((m) => `"${m}"`).join(', ')} ${missing.length === 1 ? 'has' : 'have'} no checkpoint "${label}" in ${missing.length === 1 ? 'its' : 'their'} effective history`,
      'pick a label every participant has reached, or wait until they have',
    );
    this.groupId = groupId;
    this.label = label;
    this.missing = missing;
  }
}

/** The operation does not fit the group's (or one participant's) status. Nothing was written. */
export class GroupStateError extends RewindError {
  readonly groupId: string;
  constructor(groupId: string, detail: string, hint: string) {
    super('GROUP_STATE', `group "${groupId}": ${detail}`, hint);
    this.groupId = groupId;
  }
}

export class GroupNotFoundError extends RewindError {
  constructor(groupId: string) {
    super('GROUP_NOT_FOUND', `no group with id "${groupId}"`, 'start it with coordinator.start()');
  }
}

/** A participant voted against a proposed group rollback (or has an irreversible step after the label). Nothing was compensated. */
export class GroupRollbackRefusedError extends RewindError {
  readonly groupId: string;
  readonly refusals: ReadonlyArray<{ name: string; reason: string }>;
  constructor(groupId: string, label: string, refusals: Array<{ name: string; reason: string }>) {
    super(
      'GROUP_ROLLBACK_REFUSED',
      `group "${groupId}" cannot roll back to "${label}": ${refusals.map((r) => `"${r.name}" refused (${r.reason})`).join('; ')}`,
      'resolve what the participants object to, or roll back to a later label',
    );
    this.groupId = groupId;
    this.refusals = refusals;
  }
}
