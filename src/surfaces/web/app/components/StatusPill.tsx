import { type RunStatus, STATUS_LABEL } from '../model';

export function StatusPill({ status }: { status: RunStatus }) {
  return (
    <span class={`pill st-${status}`} data-status={status}>
      <span class="pdot" />
      {STATUS_LABEL[status] ?? status}
    </span>
  );
}
