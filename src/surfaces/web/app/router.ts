import { useEffect, useState } from 'preact/hooks';

// Hash routes, so that no page path can shadow an API path on the same server:
//   #/                      runs
//   #/runs/<id>[/v/<n>]     a run, an event selected
//   #/diff/<a>/<b>          two runs side by side
//   #/reactions             the reactions following the log
export type Route =
  | { page: 'runs' }
  | { page: 'run'; runId: string; version?: number }
  | { page: 'diff'; a: string; b: string }
  | { page: 'reactions' };

export function parse(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'runs' && parts[1]) {
    const v = parts[2] === 'v' ? Number(parts[3]) : Number.NaN;
    return Number.isInteger(v) && v > 0 ? { page: 'run', runId: parts[1], version: v } : { page: 'run', runId: parts[1] };
  }
  if (parts[0] === 'diff' && parts[1] && parts[2]) return { page: 'diff', a: parts[1], b: parts[2] };
  if (parts[0] === 'reactions') return { page: 'reactions' };
  return { page: 'runs' };
}

export function navigate(path: string, replace = false): void {
  const hash = `#${path}`;
  if (replace) history.replaceState(null, '', hash);
  else if (location.hash !== hash) location.hash = hash;
  if (replace) window.dispatchEvent(new HashChangeEvent('hashchange'));
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parse(location.hash));
  useEffect(() => {
    const on = () => setRoute(parse(location.hash));
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}
