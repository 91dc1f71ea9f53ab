import type { EventStore, LeaseAttempt } from '../store/types.js';

/** Ownership off, for comparison (and the concurrency torture's mutation): every lease granted without a write, and appends unfenced. */
export function withoutOwnership(inner: EventStore): EventStore {
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === 'acquireLease')
        return async (streamId: string, owner: string, ms: number): Promise<LeaseAttempt> => ({
          acquired: true,
          lease: { streamId, owner, epoch: 1, until: Date.now() + ms },
        });
      if (prop === 'renewLeases') return async (_owner: string, ids: string[]) => ids;
      if (prop === 'releaseLease') return async () => {};
      if (prop === 'append')
        return (streamId: string, events: unknown[], options: { expectedVersion?: unknown } = {}) =>
          target.append(streamId, events as never, { expectedVersion: options.expectedVersion as never });
      if (prop === 'appendMany')
        return (appends: { fence?: unknown }[]) => target.appendMany(appends.map(({ fence: _fence, ...rest }) => rest) as never);
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
