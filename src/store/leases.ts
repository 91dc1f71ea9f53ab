import { LeaseLostError, ValidationError } from '../events/errors.js';
import type { Fence, StreamLease } from './types.js';

/*
 * Stream leases: the rules every backend keeps (memory and SQLite in code,
 * PostgreSQL in SQL with the same meaning).
 *
 * - A lease is free to take when there is none, it lapsed (`until` passed),
 *   it was released (`until` 0), its owner asks again, or its holder is
 *   known to be gone: on SQLite, whose writers share one machine, its
 *   process no longer exists; on PostgreSQL, the database session that took
 *   it has ended.
 * - Every acquire raises the epoch; a renewal keeps it. A lease lapsed but not
 *   taken by anyone else is still its owner's: it renews, and its fenced
 *   appends go through, since nobody else wrote meanwhile.
 * - A fenced append goes through only while the stream's lease has the
 *   fence's owner and epoch and is not released. Checked in the append's own
 *   transaction, after the idempotency probe and before the expected version.
 */

/** Whether `owner` may take the stream's lease now (PostgreSQL adds: the holder's session has ended). */
export function leaseFree(current: StreamLease | undefined, owner: string, now: number): boolean {
  return !current || current.owner === owner || current.until <= now;
}

/** Throws LeaseLostError unless the fence still holds the stream's lease. */
export function checkFence(
  streamId: string,
  fence: Fence | undefined,
  lease: Pick<StreamLease, 'owner' | 'epoch' | 'until'> | undefined,
): void {
  if (!fence) return;
  if (!lease || lease.owner !== fence.owner || lease.epoch !== fence.epoch || lease.until === 0)
    throw new LeaseLostError(streamId, fence.owner, fence.epoch);
}

/** Input checks shared by the store's lease methods: a typed error before any I/O. */
export function checkLeaseArgs(
  what: string,
  args: { streamId?: unknown; streamIds?: unknown; owner?: unknown; leaseMs?: unknown; epoch?: unknown },
): void {
  const issues: string[] = [];
  if ('streamId' in args && (typeof args.streamId !== 'string' || args.streamId.length === 0))
    issues.push('streamId must be a non-empty string');
  if ('streamIds' in args && (!Array.isArray(args.streamIds) || args.streamIds.some((s) => typeof s !== 'string')))
    issues.push('streamIds must be an array of stream ids');
  if ('owner' in args && (typeof args.owner !== 'string' || args.owner.length === 0 || args.owner.length > 200))
    issues.push('owner must be a non-empty string of at most 200 characters');
  if ('leaseMs' in args && !(Number.isInteger(args.leaseMs) && (args.leaseMs as number) >= 1 && (args.leaseMs as number) <= 86_400_000))
    issues.push('leaseMs must be a whole number of milliseconds from 1 to 86,400,000');
  if ('epoch' in args && !(Number.isInteger(args.epoch) && (args.epoch as number) >= 1)) issues.push('epoch must be a positive integer');
  if (issues.length) throw new ValidationError(`cannot ${what}`, issues);
}

/** A fence as given to append: owner and epoch, checked like the lease methods' arguments. */
export function checkFenceArg(where: string, fence: unknown, issues: string[]): void {
  if (fence === undefined) return;
  const f = fence as Partial<Fence> | null;
  if (
    f === null ||
    typeof f !== 'object' ||
    typeof f.owner !== 'string' ||
    f.owner.length === 0 ||
    !(Number.isInteger(f.epoch) && (f.epoch as number) >= 1)
  )
    issues.push(`${where}fence must be { owner: string, epoch: positive integer } (the lease the writer holds)`);
}
