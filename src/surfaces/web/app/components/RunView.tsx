import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Capabilities } from '../api';
import * as api from '../api';
import {
  age,
  changeList,
  clockTime,
  diffState,
  type EventEnvelope,
  journalStateAt,
  plural,
  type Row,
  type RunInfo,
  rowsOf,
  short,
} from '../model';
import { navigate } from '../router';
import { Dialog } from './Dialog';
import { JsonView } from './JsonView';
import { StatusPill } from './StatusPill';
import { Overview, Timeline } from './Timeline';

interface Props {
  runId: string;
  version?: number;
  /** A new object on every change of the URL (Back, Forward, a pasted link): the selection then follows `version`. */
  visit?: object;
  caps: Capabilities;
  onError(error: unknown): void;
  onLive(connected: boolean): void;
  toast(text: string, kind?: 'ok' | 'error'): void;
}

type Action = 'rollback' | 'fork' | 'retry';

/** One run: its timeline, the state at the selected event and what changed, the raw event, and the operator's buttons. */
export function RunView({ runId, version, visit, caps, onError, onLive, toast }: Props) {
  const [info, setInfo] = useState<RunInfo | undefined>();
  const [events, setEvents] = useState<EventEnvelope[] | undefined>();
  const [selected, setSelected] = useState<number>(version ?? 0);
  const [action, setAction] = useState<Action | undefined>();
  const [missing, setMissing] = useState<string | undefined>();
  const eventsRef = useRef<EventEnvelope[]>([]);
  eventsRef.current = events ?? [];
  const followTail = useRef(version === undefined);
  /** Reads what the log has past our last event (after an action, or when the feed reconnects). */
  const catchUpRef = useRef<() => Promise<void>>(async () => {});

  // Load, then follow the live feed: new events are appended, a gap is filled by reading from the last version we have.
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
      if (followTail.current) setSelected(more.at(-1)?.version ?? 0);
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
        setSelected((s) => (s >= 1 && s <= evs.length ? s : (evs.at(-1)?.version ?? 0)));
      })
      .catch((e) => {
        if (cancelled) return;
        if (e instanceof api.ApiError && e.status === 404) setMissing(e.message);
        else onError(e);
      });
    const stream = `run-${runId}`;
    const stop = follow(stream);
    function follow(streamId: string) {
      return api.follow(
        { streamPrefix: streamId },
        (e) => {
          if (e.streamId !== streamId) return;
          const last = eventsRef.current.at(-1)?.version ?? 0;
          if (e.version === last + 1) {
            eventsRef.current = [...eventsRef.current, e];
            setEvents((cur) => (cur && (cur.at(-1)?.version ?? 0) === e.version - 1 ? [...cur, e] : cur));
            if (followTail.current) setSelected(e.version);
          } else if (e.version > last + 1) void catchUp();
          clearTimeout(infoTimer);
          infoTimer = setTimeout(refreshInfo, 150);
        },
        (connected) => {
          onLive(connected);
          // Reconnected: whatever happened while we were away.
          if (connected && eventsRef.current.length > 0) void catchUp().catch(() => {});
        },
      );
    }
    return () => {
      cancelled = true;
      stop();
      clearTimeout(infoTimer);
      onLive(false);
    };
  }, [runId]);

  const rows = useMemo(() => rowsOf(events ?? []), [events]);
  const last = rows.at(-1)?.event.version ?? 0;

  const selectedRef = useRef(selected);
  selectedRef.current = selected;
  const select = (v: number) => {
    const clamped = Math.max(1, Math.min(v, last));
    followTail.current = clamped === last;
    selectedRef.current = clamped;
    setSelected(clamped);
    // Replaced, not pushed: stepping through events is not browsing. No hashchange either, so the route stays as it was.
    history.replaceState(null, '', `#/runs/${encodeURIComponent(runId)}/v/${clamped}`);
  };

  // The URL moves the selection too: Back and Forward, a permalink pasted into this tab (each a new `visit`).
  const firstVisit = useRef(visit);
  useEffect(() => {
    if (visit === firstVisit.current || version === undefined) return;
    const clamped = last > 0 ? Math.max(1, Math.min(version, last)) : version;
    followTail.current = clamped === last;
    selectedRef.current = clamped;
    setSelected(clamped);
  }, [visit]);

  // Keyboard: j/k or arrows step, g/G ends, n/p the next checkpoint, rollback or failure.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.metaKey || e.ctrlKey || e.altKey || action) return;
      const t = e.target;
      if (t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement) return;
      const selected = selectedRef.current;
      const interesting = (r: Row) => ['checkpoint', 'marker', 'rollback', 'fail', 'attention', 'end', 'endfail'].includes(r.kind);
      let to: number | undefined;
      if (e.key === 'j' || e.key === 'ArrowDown') to = selected + 1;
      else if (e.key === 'k' || e.key === 'ArrowUp') to = selected - 1;
      else if (e.key === 'g' || e.key === 'Home') to = 1;
      else if (e.key === 'G' || e.key === 'End') to = last;
      else if (e.key === 'PageDown') to = selected + 10;
      else if (e.key === 'PageUp') to = selected - 10;
      else if (e.key === 'n') to = rows.find((r) => r.event.version > selected && interesting(r))?.event.version;
      else if (e.key === 'p') to = [...rows].reverse().find((r) => r.event.version < selected && interesting(r))?.event.version;
      else if (e.key === 'Escape' || e.key === 'Backspace') {
        navigate('/');
        return;
      } else if (e.key === 'r') {
        e.preventDefault();
        setAction('rollback');
        return;
      } else return;
      e.preventDefault();
      if (to !== undefined) select(to);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [last, rows, action]);

  if (missing) {
    return (
      <section class="page">
        <p class="empty">
          {missing}. <a href="#/">Back to the runs</a>
        </p>
      </section>
    );
  }
  if (!info || !events)
    return (
      <section class="page">
        <p class="empty">Loading {runId}…</p>
      </section>
    );

  const row = rows.find((r) => r.event.version === selected) ?? rows.at(-1);
  const checkpoints = rows.filter((r) => r.kind === 'checkpoint');
  const effectiveLabels = [
    ...new Set(checkpoints.filter((r) => r.status === 'effective').map((r) => String((r.event.data as { label?: string }).label))),
  ];
  const undone = rows.filter((r) => r.status === 'rolled_back').length;
  const markers = rows.filter((r) => r.kind === 'marker');

  return (
    <section class="page run-page">
      <header class="run-head">
        <div class="crumbs">
          <a href="#/" class="back" title="back to runs (Esc)">
            ← Runs
          </a>
        </div>
        <div class="title-line">
          <h1 class="mono" data-testid="run-id">
            {info.runId}
          </h1>
          <StatusPill status={info.status} />
          <span class="meta">
            {info.workflow}@{info.workflowVersion} · {plural(events.length, 'event')} · started {age(info.startedAt)} · updated{' '}
            {age(info.updatedAt)}
          </span>
          <span class="grow" />
          <CompareWith runId={runId} />
          <div class="actions">
            <button
              type="button"
              class="btn"
              onClick={() => setAction('rollback')}
              title="roll back to a checkpoint (r)"
              data-action="rollback"
            >
              ↶ Roll back…
            </button>
            <button
              type="button"
              class="btn"
              onClick={() => setAction('fork')}
              disabled={!caps.fork}
              title={caps.fork ? `fork this run at v${selected}` : 'this server has no fork route (POST /runs/{runId}/fork)'}
              data-action="fork"
            >
              Fork at v{selected}…
            </button>
            <button
              type="button"
              class="btn"
              onClick={() => setAction('retry')}
              disabled={info.status !== 'needs_attention'}
              title={info.status === 'needs_attention' ? 'retry the stuck compensation' : 'only a run that needs attention can retry'}
              data-action="retry"
            >
              ⟳ Retry
            </button>
          </div>
        </div>
        {info.attention ? (
          <p class="attention" role="alert">
            needs attention: the {info.attention.stage} of <b>{info.attention.step}</b> keeps failing: {info.attention.error.message}
          </p>
        ) : null}
        {info.status === 'failed' && info.error ? <p class="attention">failed: {info.error.message}</p> : null}
        {markers.length > 0 ? (
          <p class="rollbacks">
            {markers.map((m) => {
              const d = m.event.data as { label?: string; targetVersion?: number; reason?: string };
              const n = rows.filter((r) => r.undoneBy === m.event.version).length;
              return (
                <button type="button" class="rb-chip" key={m.event.version} onClick={() => select(m.event.version)}>
                  ↶ v{m.event.version}: rolled back to “{d.label}” (v{d.targetVersion}), {plural(n, 'event')} undone — {d.reason}
                </button>
              );
            })}
          </p>
        ) : null}
      </header>
      <Overview rows={rows} selected={selected} onSelect={select} />
      <div class="split">
        <div class="pane timeline-pane">
          <div class="pane-head">
            <span>Timeline</span>
            <span class="dim">
              {plural(checkpoints.length, 'checkpoint')} · {plural(markers.length, 'rollback')} · {undone} undone
            </span>
          </div>
          <Timeline rows={rows} selected={selected} onSelect={select} />
          <p class="keys">
            <kbd>j</kbd>/<kbd>k</kbd> step · <kbd>n</kbd>/<kbd>p</kbd> next/prev checkpoint, rollback or failure · <kbd>g</kbd>/<kbd>G</kbd>{' '}
            ends · <kbd>r</kbd> roll back · <kbd>Esc</kbd> runs
          </p>
        </div>
        <div class="pane detail-pane">{row ? <Detail runId={runId} row={row} events={events} info={info} caps={caps} /> : null}</div>
      </div>
      {action === 'rollback' ? (
        <RollbackDialog
          runId={runId}
          labels={effectiveLabels}
          selectedLabel={
            row?.kind === 'checkpoint' && row.status === 'effective' ? String((row.event.data as { label?: string }).label) : undefined
          }
          onClose={() => setAction(undefined)}
          onBegin={() => {
            followTail.current = true;
          }}
          onDone={(i) => {
            setInfo(i);
            followTail.current = true;
            void catchUpRef.current().catch(() => {});
            toast(
              i.httpStatus === 202
                ? 'Rollback recorded; it goes on in the server'
                : `Rolled back: the run is now ${i.status.replace('_', ' ')}`,
            );
          }}
        />
      ) : null}
      {action === 'fork' ? (
        <SimpleAction
          title={`Fork ${runId} at v${selected}?`}
          confirm="Fork"
          text={`A new run copies this run's history up to v${selected} and continues from there under the same code and input. The original is not changed.`}
          run={() => api.fork(runId, selected)}
          onClose={() => setAction(undefined)}
          onDone={(i) => {
            toast(`Forked as ${i.runId}`);
            navigate(`/runs/${encodeURIComponent(i.runId)}`);
          }}
        />
      ) : null}
      {action === 'retry' ? (
        <SimpleAction
          title={`Retry the stuck compensation of ${runId}?`}
          confirm="Retry"
          text={`Runs the compensation of ${info.attention?.step ?? 'the stuck step'} again with a fresh retry budget and the same idempotency key.`}
          run={() => api.retry(runId)}
          onClose={() => setAction(undefined)}
          onDone={(i) => toast(`Retried: the run is now ${i.status.replace('_', ' ')}`)}
        />
      ) : null}
    </section>
  );
}

/** The state at the selected event (and the change from the one before), then the event itself. */
function Detail({
  runId,
  row,
  events,
  info,
  caps,
}: {
  runId: string;
  row: Row;
  events: EventEnvelope[];
  info: RunInfo;
  caps: Capabilities;
}) {
  const v = row.event.version;
  const [server, setServer] = useState<{ v: number; now: unknown; before: unknown } | undefined>();
  const cache = useRef(new Map<number, Promise<unknown>>());
  useEffect(() => {
    if (!caps.stateAt) return;
    let cancelled = false;
    const get = (n: number) => {
      if (n < 1) return Promise.resolve(undefined);
      let p = cache.current.get(n);
      if (!p) {
        p = api.stateAt(runId, n);
        cache.current.set(n, p);
      }
      return p;
    };
    Promise.all([get(v), get(v - 1)])
      .then(([now, before]) => !cancelled && setServer({ v, now, before }))
      .catch(() => !cancelled && setServer(undefined));
    return () => {
      cancelled = true;
    };
  }, [runId, v, caps.stateAt]);

  const fromServer = caps.stateAt && server?.v === v;
  const now = fromServer ? server.now : journalStateAt(events, v);
  const before = v > 1 ? (fromServer ? server.before : journalStateAt(events, v - 1)) : undefined;
  const changes = before === undefined ? [] : changeList(diffState(before, now));
  const e = row.event;
  const isLast = v === events.at(-1)?.version;
  const box = useRef<HTMLDivElement>(null);
  // Brings the first highlighted change into view when stepping.
  useEffect(() => {
    box.current?.querySelector('[data-testid=state] [data-mark]')?.scrollIntoView({ block: 'nearest' });
  }, [v, fromServer]);

  return (
    <div class="detail" data-testid="detail" ref={box}>
      <div class="pane-head">
        <span>
          State at <b data-testid="state-version">v{v}</b> <span class="dim">after {e.type}</span>
        </span>
        <span
          class="dim"
          title={
            fromServer
              ? "folded by the server with the workflow's reducer"
              : 'this server has no state-at route: derived in the browser from the events'
          }
        >
          {fromServer ? 'workflow state' : 'run journal (from the events)'}
        </span>
      </div>
      {row.status === 'rolled_back' ? (
        <p class="note undone-note">
          ↶ This event was rolled back by v{row.undoneBy}: it is still in the log, but no longer part of the effective history. The state
          shown is the state as it was at v{v}.
        </p>
      ) : null}
      <div class="changes" data-testid="changes">
        {before === undefined ? (
          <span class="dim">the first event</span>
        ) : changes.length === 0 ? (
          <span class="dim">no change from v{v - 1}</span>
        ) : (
          changes.map((c) => (
            <div key={c.at + c.op} class={`chg chg-${c.op}`}>
              <span class="op">{c.op === 'added' ? '+' : c.op === 'removed' ? '−' : '~'}</span>
              <span class="mono">{c.at}</span>
              <span class="mono val">{c.op === 'changed' ? `${short(c.from, 40)} → ${short(c.to, 40)}` : short(c.value, 60)}</span>
            </div>
          ))
        )}
      </div>
      <JsonView value={now} {...(before !== undefined ? { prev: before } : {})} label="state" />
      {!fromServer && isLast && info.state !== undefined ? (
        <>
          <div class="pane-head sub">
            <span>Workflow state now</span>
            <span class="dim">from the server</span>
          </div>
          <JsonView value={info.state} label="workflow-state" />
        </>
      ) : null}
      <div class="pane-head sub">
        <span>
          Event <b>v{e.version}</b> · {e.type}
        </span>
        <span class="dim">{clockTime(e.recordedAt)}</span>
      </div>
      <dl class="envelope" data-testid="envelope">
        <dt>id</dt>
        <dd class="mono">{e.id}</dd>
        <dt>stream</dt>
        <dd class="mono">
          {e.streamId} · v{e.version} · position {e.position} · schema {e.schemaVersion}
        </dd>
        <dt>recorded</dt>
        <dd class="mono">{e.recordedAt}</dd>
        <dt>hash</dt>
        <dd class="mono hash" data-testid="hash">
          {e.hash}
        </dd>
        {Object.keys(e.metadata ?? {}).length > 0 ? (
          <>
            <dt>metadata</dt>
            <dd>
              <JsonView value={e.metadata} />
            </dd>
          </>
        ) : null}
      </dl>
      <JsonView value={e.data} label="event-data" />
      <details class="raw">
        <summary>raw envelope (JSON)</summary>
        <pre class="mono">{JSON.stringify(e, null, 2)}</pre>
      </details>
    </div>
  );
}

function RollbackDialog({
  runId,
  labels,
  selectedLabel,
  onClose,
  onBegin,
  onDone,
}: {
  runId: string;
  labels: string[];
  selectedLabel: string | undefined;
  onClose(): void;
  onBegin(): void;
  onDone(info: api.ActionResult): void;
}) {
  const [to, setTo] = useState(selectedLabel ?? labels.at(-1) ?? 'start');
  const [reason, setReason] = useState('');
  const [after, setAfter] = useState<'stop' | 'retry' | 'fail'>('stop');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  return (
    <Dialog
      title={`Roll back ${runId}?`}
      confirmLabel="Roll back"
      danger
      busy={busy}
      error={error}
      disabled={reason.trim() === ''}
      onCancel={onClose}
      onConfirm={async () => {
        setBusy(true);
        setError(undefined);
        onBegin();
        try {
          const info = await api.rollback(runId, { to, reason: reason.trim(), after });
          onClose();
          onDone(info);
        } catch (e) {
          setError(e instanceof api.ApiError ? `${e.message}${e.hint ? ` (${e.hint})` : ''}` : String(e));
          setBusy(false);
        }
      }}
    >
      <p>
        The steps after the checkpoint are compensated, newest first, then a RolledBack marker is written. Nothing is deleted: the undone
        events stay in the log.
      </p>
      <label class="field block">
        <span>to checkpoint</span>
        <select value={to} onChange={(e) => setTo((e.target as HTMLSelectElement).value)} name="to">
          {labels.map((l) => (
            <option key={l} value={l}>
              {l}
            </option>
          ))}
          <option value="start">(start) — before the first step</option>
        </select>
      </label>
      <label class="field block">
        <span>reason (recorded in the log)</span>
        <input
          type="text"
          name="reason"
          value={reason}
          placeholder="why"
          onInput={(e) => setReason((e.target as HTMLInputElement).value)}
        />
      </label>
      <label class="field block">
        <span>afterwards</span>
        <select value={after} name="after" onChange={(e) => setAfter((e.target as HTMLSelectElement).value as 'stop' | 'retry' | 'fail')}>
          <option value="stop">stop (rolled back)</option>
          <option value="retry">retry from the checkpoint</option>
          <option value="fail">fail the run</option>
        </select>
      </label>
    </Dialog>
  );
}

function SimpleAction({
  title,
  confirm,
  text,
  run,
  onClose,
  onDone,
}: {
  title: string;
  confirm: string;
  text: string;
  run(): Promise<api.ActionResult>;
  onClose(): void;
  onDone(info: api.ActionResult): void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  return (
    <Dialog
      title={title}
      confirmLabel={confirm}
      busy={busy}
      error={error}
      onCancel={onClose}
      onConfirm={async () => {
        setBusy(true);
        try {
          const info = await run();
          onClose();
          onDone(info);
        } catch (e) {
          setError(e instanceof api.ApiError ? `${e.message}${e.hint ? ` (${e.hint})` : ''}` : String(e));
          setBusy(false);
        }
      }}
    >
      <p>{text}</p>
    </Dialog>
  );
}

/** A select of the other runs; picking one opens the side-by-side diff. */
function CompareWith({ runId }: { runId: string }) {
  const [runs, setRuns] = useState<string[] | undefined>();
  const load = () => {
    if (runs === undefined)
      api
        .listRuns()
        .then((r) => setRuns(r.map((x) => x.runId).filter((id) => id !== runId)))
        .catch(() => setRuns([]));
  };
  return (
    <select
      class="compare"
      aria-label="compare with"
      onFocus={load}
      onMouseDown={load}
      value=""
      onChange={(e) => {
        const other = (e.target as HTMLSelectElement).value;
        if (other) navigate(`/diff/${encodeURIComponent(runId)}/${encodeURIComponent(other)}`);
      }}
    >
      <option value="">compare with…</option>
      {(runs ?? []).map((id) => (
        <option key={id} value={id}>
          {id}
        </option>
      ))}
    </select>
  );
}
