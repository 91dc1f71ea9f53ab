import { useEffect, useRef, useState } from 'preact/hooks';
import * as api from '../api';
import type { EventEnvelope, RunInfo } from '../model';

export interface RunLogHandlers {
  onError(error: unknown): void;
  onLive(connected: boolean): void;
  /** Events arrived: `initial` when the run was first read, else the version of the newest event now held. */
  onEvents(newest: number, initial: boolean): void;
}

export interface RunLog {
  info: RunInfo | undefined;
  events: EventEnvelope[] | undefined;
  /** Why the run cannot be shown (it does not exist). */
  missing: string | undefined;
  setInfo(info: RunInfo): void;
  /** Reads what the log has past our last event (after an action, or when the feed reconnects), and the run's info again. */
  catchUp(): Promise<void>;
}

/**
 * One run's info and events: read, then followed on the live feed. A new
 * event that follows ours is appended; a gap is filled by reading from the
 * last version we have; a reconnect reads whatever happened meanwhile.
 */
export function useRunLog(runId: string, handlers: RunLogHandlers): RunLog {
  const [info, setInfo] = useState<RunInfo | undefined>();
  const [events, setEvents] = useState<EventEnvelope[] | undefined>();
  const [missing, setMissing] = useState<string | undefined>();
  const eventsRef = useRef<EventEnvelope[]>([]);
  eventsRef.current = events ?? [];
  const on = useRef(handlers);
  on.current = handlers;
  const catchUpRef = useRef<() => Promise<void>>(async () => {});

  useEffect(() => {
    let cancelled = false;
    let infoTimer: ReturnType<typeof setTimeout> | undefined;
    const refreshInfo = () =>
      api
        .getRun(runId)
        .then((i) => !cancelled && setInfo(i))
        .catch(() => {});
    const catchUp = async () => {
      const have = eventsRef.current;
      const more = await api.runEvents(runId, (have.at(-1)?.version ?? 0) + 1);
      if (cancelled || more.length === 0) return;
      setEvents((cur) => {
        const last = cur?.at(-1)?.version ?? 0;
        return [...(cur ?? []), ...more.filter((e) => e.version > last)];
      });
      on.current.onEvents(more.at(-1)?.version ?? 0, false);
    };
    catchUpRef.current = () => catchUp().then(() => void refreshInfo());
    setInfo(undefined);
    setEvents(undefined);
    setMissing(undefined);
    Promise.all([api.getRun(runId), api.runEvents(runId)])
      .then(([i, evs]) => {
        if (cancelled) return;
        setInfo(i);
        setEvents(evs);
        on.current.onEvents(evs.at(-1)?.version ?? 0, true);
      })
      .catch((e) => {
        if (cancelled) return;
        if (e instanceof api.ApiError && e.status === 404) setMissing(e.message);
        else on.current.onError(e);
      });
    const streamId = `run-${runId}`;
    const stop = api.follow(
      { streamPrefix: streamId },
      (e) => {
        if (e.streamId !== streamId) return;
        const last = eventsRef.current.at(-1)?.version ?? 0;
        if (e.version === last + 1) {
          eventsRef.current = [...eventsRef.current, e];
          setEvents((cur) => (cur && (cur.at(-1)?.version ?? 0) === e.version - 1 ? [...cur, e] : cur));
          on.current.onEvents(e.version, false);
        } else if (e.version > last + 1) void catchUp();
        clearTimeout(infoTimer);
        infoTimer = setTimeout(refreshInfo, 150);
      },
      (connected) => {
        on.current.onLive(connected);
        // Reconnected: whatever happened while we were away.
        if (connected && eventsRef.current.length > 0) void catchUp().catch(() => {});
      },
    );
    return () => {
      cancelled = true;
      stop();
      clearTimeout(infoTimer);
      on.current.onLive(false);
    };
  }, [runId]);

  return { info, events, missing, setInfo, catchUp: () => catchUpRef.current() };
}
