import { render } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import * as api from './api';
import { DiffView } from './components/DiffView';
import { ReactionsView } from './components/ReactionsView';
import { RunsList } from './components/RunsList';
import { RunView } from './components/RunView';
import { useRoute } from './router';
import './styles.css';

interface Toast {
  id: number;
  text: string;
  kind: 'ok' | 'error';
}

let toastIds = 0;

function App() {
  const route = useRoute();
  const [caps, setCaps] = useState<api.Capabilities>({ runs: true, stateAt: false, fork: false, retry: true, reactions: true });
  const [live, setLive] = useState(false);
  const [tokenOpen, setTokenOpen] = useState(false);
  const [authNeeded, setAuthNeeded] = useState(false);
  const [toasts, setToasts] = useState<Toast[]>([]);
  const [generation, setGeneration] = useState(0);

  const toast = useCallback((text: string, kind: 'ok' | 'error' = 'ok') => {
    const id = ++toastIds;
    setToasts((t) => [...t, { id, text, kind }]);
    setTimeout(() => setToasts((t) => t.filter((x) => x.id !== id)), kind === 'error' ? 8000 : 4000);
  }, []);

  const onError = useCallback((e: unknown) => {
    if (e instanceof api.ApiError && (e.status === 401 || e.status === 403)) {
      setAuthNeeded(true);
      setTokenOpen(true);
      return;
    }
    toast(e instanceof api.ApiError ? `${e.message}${e.hint ? ` — ${e.hint}` : ''}` : String(e), 'error');
  }, []);

  useEffect(() => {
    api
      .capabilities()
      .then((c) => {
        setCaps(c);
        setAuthNeeded(false);
      })
      .catch(onError);
  }, [generation]);

  useEffect(() => {
    document.title =
      route.page === 'run'
        ? `${route.runId} · Rewind`
        : route.page === 'diff'
          ? `${route.a} ↔ ${route.b} · Rewind`
          : route.page === 'reactions'
            ? 'Reactions · Rewind'
            : 'Runs · Rewind';
  }, [route]);

  return (
    <div class="shell">
      <nav class="top">
        <a href="#/" class="brand" title="runs">
          <span class="logo">↶</span> Rewind <span class="dim">debugger</span>
        </a>
        <a href="#/" class={`navlink${route.page === 'reactions' ? '' : ' on'}`} data-nav="runs">
          Runs
        </a>
        {caps.reactions ? (
          <a href="#/reactions" class={`navlink${route.page === 'reactions' ? ' on' : ''}`} data-nav="reactions">
            Reactions
          </a>
        ) : null}
        <span class="grow" />
        {route.page === 'diff' ? null : (
          <span
            class={`live${live ? ' on' : ''}`}
            data-testid="live"
            title={live ? 'following the live feed (/events/live)' : 'not connected to the live feed'}
          >
            <span class="pdot" /> {live ? 'live' : 'not live'}
          </span>
        )}
        <button type="button" class={`btn small${authNeeded ? ' warn' : ''}`} onClick={() => setTokenOpen((o) => !o)}>
          {api.getToken() ? 'token ✓' : 'token'}
        </button>
      </nav>
      {tokenOpen ? (
        <TokenBar
          needed={authNeeded}
          onSave={(t) => {
            api.setToken(t);
            setTokenOpen(false);
            setGeneration((g) => g + 1);
          }}
          onClose={() => setTokenOpen(false)}
        />
      ) : null}
      <main key={generation}>
        {route.page === 'runs' ? (
          <RunsList onError={onError} onLive={setLive} />
        ) : route.page === 'reactions' ? (
          <ReactionsView onError={onError} onLive={setLive} toast={toast} />
        ) : route.page === 'run' ? (
          <RunView
            key={route.runId}
            runId={route.runId}
            version={route.version}
            visit={route}
            caps={caps}
            onError={onError}
            onLive={setLive}
            toast={toast}
          />
        ) : (
          <DiffView key={`${route.a}|${route.b}`} a={route.a} b={route.b} onError={onError} />
        )}
      </main>
      <div class="toasts" aria-live="polite">
        {toasts.map((t) => (
          <div key={t.id} class={`toast ${t.kind}`} role={t.kind === 'error' ? 'alert' : 'status'}>
            {t.text}
          </div>
        ))}
      </div>
    </div>
  );
}

function TokenBar({ needed, onSave, onClose }: { needed: boolean; onSave(token: string): void; onClose(): void }) {
  const [value, setValue] = useState(api.getToken());
  return (
    <form
      class="tokenbar"
      onSubmit={(e) => {
        e.preventDefault();
        onSave(value.trim());
      }}
    >
      <span>{needed ? 'This server needs a bearer token.' : 'Bearer token'}</span>
      <input
        type="password"
        autoComplete="off"
        placeholder="read or admin token (kept in this tab only)"
        value={value}
        onInput={(e) => setValue((e.target as HTMLInputElement).value)}
        aria-label="bearer token"
      />
      <button type="submit" class="btn primary small">
        Save
      </button>
      <button type="button" class="btn small" onClick={() => onSave('')}>
        Forget
      </button>
      <button type="button" class="btn small" onClick={onClose}>
        Close
      </button>
    </form>
  );
}

render(<App />, document.getElementById('app') as HTMLElement);
