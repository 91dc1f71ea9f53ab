import { useEffect, useMemo, useState } from 'preact/hooks';
import * as api from '../api';
import {
  alignRuns,
  changeList,
  diffState,
  type EventEnvelope,
  journalStateAt,
  plural,
  type Relation,
  type RunInfo,
  short,
  summaryOf,
} from '../model';
import { JsonView } from './JsonView';
import { StatusPill } from './StatusPill';

interface Side {
  info: RunInfo;
  events: EventEnvelope[];
}

/**
 * Two runs side by side: their effective histories aligned, the first event
 * where they differ, and a structural diff of their states at the end.
 * Computed here from GET /runs/{id} and /runs/{id}/events.
 */
export function DiffView({ a, b, onError }: { a: string; b: string; onError(e: unknown): void }) {
  const [sides, setSides] = useState<[Side, Side] | undefined>();
  const [failed, setFailed] = useState<string | undefined>();
  useEffect(() => {
    let cancelled = false;
    setSides(undefined);
    const load = async (id: string): Promise<Side> => {
      const [info, events] = await Promise.all([api.getRun(id), api.runEvents(id)]);
      return { info, events };
    };
    Promise.all([load(a), load(b)])
      .then((s) => !cancelled && setSides(s))
      .catch((e) => {
        if (cancelled) return;
        setFailed(e instanceof Error ? e.message : String(e));
        onError(e);
      });
    return () => {
      cancelled = true;
    };
  }, [a, b]);

  const cmp = useMemo(() => (sides ? alignRuns(sides[0].events, sides[1].events) : undefined), [sides]);
  if (failed)
    return (
      <section class="page">
        <p class="empty">
          {failed}. <a href="#/">Back to the runs</a>
        </p>
      </section>
    );
  if (!sides || !cmp)
    return (
      <section class="page">
        <p class="empty">
          Loading {a} and {b}…
        </p>
      </section>
    );
  const [A, B] = sides;

  // The workflow's state when the server folds it (RunInfo.state); otherwise the run journal derived here.
  const serverStates = A.info.state !== undefined && B.info.state !== undefined;
  const sa = serverStates ? A.info.state : journalStateAt(A.events, A.events.length);
  const sb = serverStates ? B.info.state : journalStateAt(B.events, B.events.length);
  const changes = changeList(diffState(sa, sb));
  const marksA = new Map(changes.filter((c) => c.op !== 'added').map((c) => [c.at, c.op] as const));
  const marksB = new Map(changes.filter((c) => c.op !== 'removed').map((c) => [c.at, c.op] as const));
  const relation = describeRelation(cmp.relation, A.info, B.info);
  const divergence = cmp.identical ? undefined : cmp.shared;
  const [ea, eb] = [cmp.a.effective, cmp.b.effective];
  const da = divergence !== undefined ? ea[divergence] : undefined;
  const db = divergence !== undefined ? eb[divergence] : undefined;
  const n = Math.max(ea.length, eb.length);

  return (
    <section class="page diff-page" data-testid="diff">
      <header class="run-head">
        <div class="crumbs">
          <a href="#/" class="back">
            ← Runs
          </a>
        </div>
        <div class="title-line">
          <h1>Compare</h1>
          <span class="meta">{relation}</span>
          <span class="grow" />
          <a class="btn" href={`#/diff/${encodeURIComponent(b)}/${encodeURIComponent(a)}`} title="swap sides">
            ⇄ Swap
          </a>
        </div>
        <p class="verdict" data-testid="verdict">
          {cmp.identical
            ? `Same effective history (${plural(cmp.shared, 'event')}).`
            : cmp.shared === 0
              ? 'They share nothing: they differ from the first event.'
              : `They share ${plural(cmp.shared, 'effective event')}, then diverge: `}
          {da || db ? (
            <>
              <b class="a-col">{da ? `v${da.version} ${da.type}` : 'the end'}</b> vs{' '}
              <b class="b-col">{db ? `v${db.version} ${db.type}` : 'the end'}</b>
            </>
          ) : null}
        </p>
      </header>
      <div class="split two">
        {[A, B].map((s, side) => (
          <div class="pane" key={s.info.runId}>
            <div class="pane-head">
              <a class="mono" href={`#/runs/${encodeURIComponent(s.info.runId)}`}>
                {side === 0 ? 'A' : 'B'} · {s.info.runId}
              </a>
              <StatusPill status={s.info.status} />
            </div>
            <ol class="timeline cmp">
              {Array.from({ length: n }, (_, i) => {
                const e = (side === 0 ? ea : eb)[i];
                const cls = i < cmp.shared ? 'shared' : i === divergence ? 'diverge' : 'own';
                if (!e && i !== divergence) return null;
                return (
                  <li key={i} class={`row ${cls}${e ? '' : ' blank'}`} data-index={i}>
                    <span class="v">{e ? e.version : ''}</span>
                    <span class="type">{e ? e.type : i === divergence ? '(ends)' : ''}</span>
                    <span class="sum">
                      <span class="text">{e ? summaryOf(e, (v) => short(v)) : ''}</span>
                    </span>
                  </li>
                );
              })}
            </ol>
          </div>
        ))}
      </div>
      <div class="split two">
        {[
          [A, sa, marksA],
          [B, sb, marksB],
        ].map(([s, st, marks], side) => (
          <div class="pane" key={side}>
            <div class="pane-head">
              <span>
                State of {side === 0 ? 'A' : 'B'} at its end (v{(s as Side).events.length})
              </span>
              <span class="dim">{serverStates ? 'workflow state' : 'run journal'}</span>
            </div>
            <JsonView value={st} marks={marks as Map<string, 'added' | 'removed' | 'changed'>} label={side === 0 ? 'state-a' : 'state-b'} />
          </div>
        ))}
      </div>
      <div class="pane">
        <div class="pane-head">
          <span>State diff A → B</span>
          <span class="dim">{changes.length === 0 ? 'equal' : plural(changes.length, 'change')}</span>
        </div>
        <div class="changes">
          {changes.map((c) => (
            <div key={c.at + c.op} class={`chg chg-${c.op}`}>
              <span class="op">{c.op === 'added' ? '+' : c.op === 'removed' ? '−' : '~'}</span>
              <span class="mono">{c.at}</span>
              <span class="mono val">
                {c.op === 'changed' ? `${JSON.stringify(c.from)} → ${JSON.stringify(c.to)}` : JSON.stringify(c.value)}
              </span>
            </div>
          ))}
        </div>
      </div>
    </section>
  );
}

function describeRelation(relation: Relation, a: RunInfo, b: RunInfo): string {
  switch (relation.kind) {
    case 'fork':
      return `${relation.child} is a fork of ${relation.parent} at v${relation.version}`;
    case 'siblings':
      return `forks of ${relation.parent} at v${relation.versions[0]} and v${relation.versions[1]}`;
    case 'same-workflow':
      return `two runs of ${relation.workflow}`;
    case 'unrelated':
      return `different workflows (${a.workflow} and ${b.workflow})`;
  }
}
