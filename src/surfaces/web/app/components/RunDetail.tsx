import { useEffect, useRef, useState } from 'preact/hooks';
import type { Capabilities } from '../api';
import * as api from '../api';
import { changeList, clockTime, diffState, type EventEnvelope, journalStateAt, type Row, type RunInfo, short } from '../model';
import { JsonView } from './JsonView';

/** The state at the selected event (and the change from the one before), then the event itself. */
export function RunDetail({
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
