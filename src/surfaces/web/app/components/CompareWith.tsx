import { useState } from 'preact/hooks';
import * as api from '../api';
import { navigate } from '../router';

/** A select of the other runs; picking one opens the side-by-side diff. */
export function CompareWith({ runId }: { runId: string }) {
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
