import type { RunnableConfig } from '@langchain/core/runnables';
import type { ChannelVersions, Checkpoint } from '@langchain/langgraph-checkpoint';
import { ValidationError } from '../../events/errors.js';

// What the saver accepts from LangGraph: a config naming a thread (and a
// namespace and a checkpoint), and checkpoints with their channel versions.
// Bad input is a ValidationError before anything is read or written.

export function readConfig(config: RunnableConfig, op: string): { threadId: string; ns: string; checkpointId: string | undefined } {
  const c = config?.configurable;
  if (c === null || typeof c !== 'object') {
    throw new ValidationError(`${op}: config.configurable is missing`, [], 'pass { configurable: { thread_id } }');
  }
  const checkpointId = c.checkpoint_id || undefined;
  if (checkpointId !== undefined && typeof checkpointId !== 'string') throw new ValidationError(`${op}: checkpoint_id must be a string`);
  return { threadId: threadIdOf(c.thread_id, op), ns: nsOf(c.checkpoint_ns ?? '', op), checkpointId };
}

export function threadIdOf(value: unknown, op: string): string {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string' || value.length === 0) {
    throw new ValidationError(`${op}: thread_id must be a non-empty string`, [], 'pass { configurable: { thread_id: "…" } }');
  }
  return value;
}

export function nsOf(value: unknown, op: string): string {
  if (typeof value !== 'string') throw new ValidationError(`${op}: checkpoint_ns must be a string`);
  return value;
}

export function checkCheckpoint(checkpoint: Checkpoint, newVersions: ChannelVersions): void {
  const issues: string[] = [];
  if (checkpoint === null || typeof checkpoint !== 'object') issues.push('checkpoint must be an object');
  else {
    if (typeof checkpoint.id !== 'string' || checkpoint.id.length === 0) issues.push('checkpoint.id must be a non-empty string');
    if (checkpoint.channel_values !== undefined && (checkpoint.channel_values === null || typeof checkpoint.channel_values !== 'object')) {
      issues.push('checkpoint.channel_values must be an object');
    }
  }
  if (newVersions === null || typeof newVersions !== 'object') issues.push('newVersions must be an object of channel -> version');
  else {
    for (const [channel, version] of Object.entries(newVersions)) {
      if (!(typeof version === 'string' || (typeof version === 'number' && Number.isFinite(version)))) {
        issues.push(`newVersions.${channel} must be a number or a string`);
      }
    }
  }
  if (issues.length) throw new ValidationError('put: invalid checkpoint', issues);
}
