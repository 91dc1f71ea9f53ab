import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Capabilities } from '../api';
import * as api from '../api';
import { useRunKeys } from '../hooks/useRunKeys';
import { useRunLog } from '../hooks/useRunLog';
import { age, historyOf, plural, rowsOf } from '../model';
import { navigate } from '../router';
import { CompareWith } from './CompareWith';
import { DecisionDialog, RollbackDialog, SimpleAction } from './RunActions';
import { RunDetail } from './RunDetail';
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

type Action = 'rollback' | 'fork' | 'retry' | 'approve' | 'reject';

/** One run: its timeline, the state at the selected event and what changed, the raw event, and the operator's buttons. */
export function RunView({ runId, version, visit, caps, onError, onLive, toast }: Props) {
  const [selected, setSelected] = useState<number>(version ?? 0);
  const [action, setAction] = useState<Action | undefined>();
  /** The newest event stays selected as events arrive, until another one is picked. */
  const followTail = useRef(version === undefined);
  const { info, events, missing, setInfo, catchUp } = useRunLog(runId, {
    onError,
    onLive,
    onEvents(newest, initial) {
      if (initial) setSelected((s) => (s >= 1 && s <= newest ? s : newest));
      else if (followTail.current) setSelected(newest);
    },
  });

  const rows = useMemo(() => rowsOf(events ?? []), [events]);
  /** Its checkpoints and rollbacks, as the runtime tells them (the run model's history view). */
  const marked = useMemo(() => (events?.length ? historyOf(events) : undefined), [events]);
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

  useRunKeys({
    rows,
    selected: () => selectedRef.current,
    select,
    blocked: action !== undefined,
    onBack: () => navigate('/'),
    onRollback: () => setAction('rollback'),
  });

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
  const { checkpoints, rollbacks } = marked ?? { checkpoints: [], rollbacks: [] };
  const effectiveLabels = [...new Set(checkpoints.filter((c) => c.effective).map((c) => c.label))];
  const undone = rows.filter((r) => r.status === 'rolled_back').length;

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
        {info.waiting ? (
          <p class="waiting" role="status" data-testid="waiting">
            {info.waiting.approval ? (
              <>
                waiting for approval <b>{info.waiting.approval.label}</b>
                {info.waiting.approval.details === undefined ? null : <code> {JSON.stringify(info.waiting.approval.details)}</code>}
                <button type="button" class="btn" data-action="approve" onClick={() => setAction('approve')}>
                  ✓ Approve…
                </button>
                <button type="button" class="btn danger" data-action="reject" onClick={() => setAction('reject')}>
                  ✗ Reject…
                </button>
              </>
            ) : (
              <>
                waiting for signal <b>{info.waiting.name}</b> (send it with <code>rewind signal</code> or POST /runs/…/signals/…)
              </>
            )}
            {info.waiting.timeoutAt === undefined ? null : (
              <span class="dim"> · times out {age(new Date(info.waiting.timeoutAt).toISOString())}</span>
            )}
          </p>
        ) : null}
        {info.pointOfNoReturn ? (
          <p class="no-return">
            point of no return: <b>{info.pointOfNoReturn.step}</b> at v{info.pointOfNoReturn.version} cannot be undone; a rollback before it
            needs past: 'irreversible'
          </p>
        ) : null}
        {rollbacks.length > 0 ? (
          <p class="rollbacks">
            {rollbacks.map((r) => (
              <button type="button" class="rb-chip" key={r.version} onClick={() => select(r.version)}>
                ↶ v{r.version}: rolled back to “{r.label}” (v{r.targetVersion}), {plural(r.undid, 'event')} undone — {r.reason}
              </button>
            ))}
          </p>
        ) : null}
      </header>
      <Overview rows={rows} selected={selected} onSelect={select} />
      <div class="split">
        <div class="pane timeline-pane">
          <div class="pane-head">
            <span>Timeline</span>
            <span class="dim">
              {plural(checkpoints.length, 'checkpoint')} · {plural(rollbacks.length, 'rollback')} · {undone} undone
            </span>
          </div>
          <Timeline rows={rows} selected={selected} onSelect={select} />
          <p class="keys">
            <kbd>j</kbd>/<kbd>k</kbd> step · <kbd>n</kbd>/<kbd>p</kbd> next/prev checkpoint, rollback or failure · <kbd>g</kbd>/<kbd>G</kbd>{' '}
            ends · <kbd>r</kbd> roll back · <kbd>Esc</kbd> runs
          </p>
        </div>
        <div class="pane detail-pane">{row ? <RunDetail runId={runId} row={row} events={events} info={info} caps={caps} /> : null}</div>
      </div>
      {action === 'rollback' ? (
        <RollbackDialog
          runId={runId}
          labels={effectiveLabels}
          selectedLabel={checkpoints.find((c) => c.effective && c.version === row?.event.version)?.label}
          onClose={() => setAction(undefined)}
          onBegin={() => {
            followTail.current = true;
          }}
          onDone={(i) => {
            setInfo(i);
            followTail.current = true;
            void catchUp().catch(() => {});
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
      {(action === 'approve' || action === 'reject') && info.waiting?.approval ? (
        <DecisionDialog
          runId={runId}
          label={info.waiting.approval.label}
          details={info.waiting.approval.details}
          approve={action === 'approve'}
          onClose={() => setAction(undefined)}
          onDone={(i) => {
            setInfo(i);
            followTail.current = true;
            void catchUp().catch(() => {});
            toast(`${action === 'approve' ? 'Approved' : 'Rejected'}: the run is now ${i.status.replace('_', ' ')}`);
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
