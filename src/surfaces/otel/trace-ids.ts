import { trace } from '@opentelemetry/api';
import type { NewEvent } from '../../events/envelope.js';
import type { EventStore, StreamAppend } from '../../store/types.js';

/**
 * The store, with the active span's trace id and span id put in the metadata
 * of every event appended (unless the event already names a trace: a fork's
 * copies keep their original's). Hand it to createRuntime, and a run started
 * inside a request's span carries that trace, which instrument() then joins.
 *
 *   const runtime = createRuntime({ store: withTraceIds(store), workflows });
 *
 * Every append of the runtime (runs, rollbacks, forks, coordinators) goes
 * through the store, so this is the one place that sees them all.
 */
export function withTraceIds(store: EventStore): EventStore {
  const stamp = (events: NewEvent[]): NewEvent[] => {
    const span = trace.getActiveSpan()?.spanContext();
    if (!span || !trace.isSpanContextValid(span)) return events;
    return events.map((e) =>
      e.metadata?.traceId !== undefined ? e : { ...e, metadata: { ...e.metadata, traceId: span.traceId, spanId: span.spanId } },
    );
  };
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'append') {
        return (streamId: string, events: NewEvent[], options?: Parameters<EventStore['append']>[2]) =>
          target.append(streamId, stamp(events), options);
      }
      if (prop === 'appendMany') {
        return (appends: StreamAppend[]) => target.appendMany(appends.map((a) => ({ ...a, events: stamp(a.events) })));
      }
      // Bound to the store itself: its methods use private fields a proxy does not have.
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
