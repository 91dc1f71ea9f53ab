import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, follow, type RunCounts, runCounts, runsPage } from '../api';
import { age, RUN_STATUSES, type RunStatus, type RunSummary, STATUS_LABEL } from '../model';
import { navigate } from '../router';
import { StatusPill } from './StatusPill';

interface Props {
  onError(error: unknown): void;
  onLive(connected: boolean): void;
}

const FILTER_KEY = 'rewind.filters';
const PAGE = 200;
const MAX_PAGE = 1000;
const COUNTS_EVERY_MS = 5000;

function savedFilters(): { status: RunStatus | ''; workflow: string; q: string } {
  try {
    return { status: '', workflow: '', q: '', ...JSON.parse(sessionStorage.getItem(FILTER_KEY) ?? '{}') };
  } catch {
    return { status: '', workflow: '', q: '' };
  }
}

/** Runs, newest first, a page at a time (filtered on the server): status, workflow, age; counts, search, and two picked for a diff. */
export function RunsList({ onError, onLive }: Props) {
  const [runs, setRuns] = useState<RunSummary[] | undefined>(undefined);
  const [next, setNext] = useState<string | undefined>(undefined);
  const [counts, setCounts] = useState<RunCounts | undefined>(undefined);
  const [filters, setFilters] = useState(savedFilters);
  const [cursor, setCursor] = useState(0);
  const [picked, setPicked] = useState<string[]>([]);
  const [, tick] = useState(0);
  const search = useRef<HTMLInputElement>(null);
  /** How many runs are shown: a reload fetches as many again, so new events never take away the pages read. */
  const wanted = useRef(PAGE);
  const counted = useRef(0);

  useEffect(() => {
    try {
      sessionStorage.setItem(FILTER_KEY, JSON.stringify(filters));
    } catch {}
  }, [filters]);

  useEffect(() => {
    let cancelled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    wanted.current = PAGE;
    const load = async () => {
      try {
        // The counts cost a scan of the index (a few hundred ms at a million runs): at most every COUNTS_EVERY_MS.
        const recount = Date.now() - counted.current >= COUNTS_EVERY_MS;
        if (recount) counted.current = Date.now();
        const [page, c] = await Promise.all([
          runsPage({ status: filters.status, workflow: filters.workflow, limit: Math.min(wanted.current, MAX_PAGE) }),
          recount ? runCounts() : undefined,
        ]);
        if (cancelled) return;
        setRuns(page.runs);
        setNext(page.next);
        if (c) setCounts(c);
      } catch (e) {
        if (cancelled) return;
        onError(e);
        setRuns((r) => r ?? []);
      }
    };
    void load();
    // Any event of any run may change its status or version: reload, at most every 300 ms.
    const stop = follow(
      { streamPrefix: 'run-' },
      () => {
        clearTimeout(timer);
        timer = setTimeout(load, 300);
      },
      onLive,
    );
    const clock = setInterval(() => tick((n) => n + 1), 10_000);
    return () => {
      cancelled = true;
      stop();
      clearInterval(clock);
      clearTimeout(timer);
      onLive(false);
    };
  }, [filters.status, filters.workflow]);

  const more = () =>
    runsPage({ status: filters.status, workflow: filters.workflow, after: next })
      .then((page) => {
        setRuns((r) => [...(r ?? []), ...page.runs]);
        setNext(page.next);
        wanted.current += PAGE;
      })
      .catch(onError);

  // A search shows the runs listed so far whose id holds it, and every run whose id starts with it (from the server: not only the pages read).
  const [found, setFound] = useState<RunSummary[]>([]);
  useEffect(() => {
    const q = filters.q.trim();
    if (!q) return setFound([]);
    let cancelled = false;
    const timer = setTimeout(() => {
      runsPage({ status: filters.status, workflow: filters.workflow, idPrefix: q })
        .then((page) => !cancelled && setFound(page.runs))
        .catch((e) => !cancelled && onError(e));
    }, 200);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [filters.q, filters.status, filters.workflow, runs]);

  const workflows = useMemo(() => [...new Set((counts?.byWorkflow ?? []).map((c) => c.workflow))].sort(), [counts]);
  const shown = useMemo(() => {
    const q = filters.q.trim().toLowerCase();
    if (!q) return runs ?? [];
    const seen = new Set<string>();
    return [...(runs ?? []).filter((r) => r.runId.toLowerCase().includes(q)), ...found]
      .filter((r) => !seen.has(r.runId) && seen.add(r.runId))
      .sort((a, b) => b.startedAt.localeCompare(a.startedAt) || b.runId.localeCompare(a.runId));
  }, [runs, found, filters.q]);

  useEffect(() => setCursor((c) => Math.min(c, Math.max(0, shown.length - 1))), [shown.length]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.metaKey || e.ctrlKey || e.altKey || document.querySelector('.modal')) return;
      const typing =
        e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement || e.target instanceof HTMLTextAreaElement;
      if (typing) {
        if (e.key === 'Escape' || (e.key === 'ArrowDown' && e.target === search.current)) {
          (e.target as HTMLElement).blur();
          e.preventDefault();
        }
        if (e.key === 'Enter' && e.target === search.current && shown[cursor]) navigate(`/runs/${encodeURIComponent(shown[cursor].runId)}`);
        return;
      }
      if (e.key === '/') {
        e.preventDefault();
        search.current?.focus();
      } else if (e.key === 'j' || e.key === 'ArrowDown') {
        e.preventDefault();
        setCursor((c) => Math.min(c + 1, shown.length - 1));
      } else if (e.key === 'k' || e.key === 'ArrowUp') {
        e.preventDefault();
        setCursor((c) => Math.max(c - 1, 0));
      } else if (e.key === 'Enter' || e.key === 'o') {
        const run = shown[cursor];
        if (run) navigate(`/runs/${encodeURIComponent(run.runId)}`);
      } else if (e.key === 'x') {
        const run = shown[cursor];
        if (run) toggle(run.runId);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [shown, cursor]);

  useEffect(() => {
    document.querySelector('.runs tbody tr.cursor')?.scrollIntoView({ block: 'nearest' });
  }, [cursor]);

  const toggle = (runId: string) => setPicked((p) => (p.includes(runId) ? p.filter((x) => x !== runId) : [...p.slice(-1), runId]));

  return (
    <section class="page runs-page">
      <div class="toolbar">
        <h1>Runs</h1>
        <fieldset class="chips" aria-label="filter by status">
          <button type="button" class={`chip${filters.status === '' ? ' on' : ''}`} onClick={() => setFilters({ ...filters, status: '' })}>
            all <span class="n">{counts?.total ?? 0}</span>
          </button>
          {RUN_STATUSES.filter((s) => counts?.byStatus[s] || filters.status === s).map((s) => (
            <button
              type="button"
              key={s}
              class={`chip st-${s}${filters.status === s ? ' on' : ''}`}
              onClick={() => setFilters({ ...filters, status: filters.status === s ? '' : s })}
            >
              {STATUS_LABEL[s]} <span class="n">{counts?.byStatus[s] ?? 0}</span>
            </button>
          ))}
        </fieldset>
        <span class="grow" />
        <label class="field">
          <span>status</span>
          <select
            value={filters.status}
            aria-label="status"
            onChange={(e) => setFilters({ ...filters, status: (e.target as HTMLSelectElement).value as RunStatus | '' })}
          >
            <option value="">any</option>
            {RUN_STATUSES.map((s) => (
              <option key={s} value={s}>
                {STATUS_LABEL[s]}
              </option>
            ))}
          </select>
        </label>
        <label class="field">
          <span>workflow</span>
          <select
            value={filters.workflow}
            aria-label="workflow"
            onChange={(e) => setFilters({ ...filters, workflow: (e.target as HTMLSelectElement).value })}
          >
            <option value="">any</option>
            {workflows.map((w) => (
              <option key={w} value={w}>
                {w}
              </option>
            ))}
          </select>
        </label>
        <input
          ref={search}
          class="search"
          type="search"
          placeholder="search run id   /"
          aria-label="search run id"
          value={filters.q}
          onInput={(e) => setFilters({ ...filters, q: (e.target as HTMLInputElement).value })}
        />
        <button
          type="button"
          class="btn"
          disabled={picked.length !== 2}
          title={picked.length === 2 ? `compare ${picked[0]} and ${picked[1]}` : 'tick two runs (x) to compare them'}
          onClick={() => navigate(`/diff/${encodeURIComponent(picked[0] as string)}/${encodeURIComponent(picked[1] as string)}`)}
        >
          Compare {picked.length}/2
        </button>
      </div>
      {runs === undefined ? (
        <p class="empty">Loading runs…</p>
      ) : shown.length === 0 ? (
        <p class="empty">{counts?.total === 0 ? 'No runs yet. Try `rewind demo`, then reload.' : 'No run matches these filters.'}</p>
      ) : (
        <table class="runs" data-testid="runs">
          <thead>
            <tr>
              <th class="pick" aria-label="compare" />
              <th>status</th>
              <th>run</th>
              <th>workflow</th>
              <th class="num">events</th>
              <th>started</th>
              <th>updated</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((r, i) => (
              <tr
                key={r.runId}
                class={i === cursor ? 'cursor' : ''}
                data-run={r.runId}
                onClick={() => navigate(`/runs/${encodeURIComponent(r.runId)}`)}
              >
                {/* biome-ignore lint/a11y/useKeyWithClickEvents: only keeps a click on the checkbox from opening the run */}
                <td class="pick" onClick={(e) => e.stopPropagation()}>
                  <input
                    type="checkbox"
                    checked={picked.includes(r.runId)}
                    aria-label={`pick ${r.runId} to compare`}
                    onChange={() => toggle(r.runId)}
                  />
                </td>
                <td>
                  <StatusPill status={r.status} />
                  {r.waitingFor && <span class="dim waiting-for"> {r.waitingFor}</span>}
                </td>
                <td class="mono id">
                  <a href={`#/runs/${encodeURIComponent(r.runId)}`} onClick={(e) => e.stopPropagation()}>
                    {r.runId}
                  </a>
                </td>
                <td>
                  {r.workflow}
                  <span class="dim">@{r.workflowVersion}</span>
                </td>
                <td class="num mono">{r.version}</td>
                <td title={r.startedAt}>{age(r.startedAt)}</td>
                <td title={r.updatedAt}>{age(r.updatedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {next && runs && (
        <p class="more">
          <button type="button" class="btn" onClick={more}>
            Show older runs
          </button>
          <span class="dim"> {runs.length} shown</span>
        </p>
      )}
      <p class="keys">
        <kbd>j</kbd>/<kbd>k</kbd> move · <kbd>Enter</kbd> open · <kbd>/</kbd> search · <kbd>x</kbd> pick for compare
      </p>
    </section>
  );
}

export function isAuthError(e: unknown): boolean {
  return e instanceof ApiError && (e.status === 401 || e.status === 403);
}
