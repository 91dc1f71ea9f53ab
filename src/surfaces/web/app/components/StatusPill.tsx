import { STATUS_LABEL } from '../model';

export function StatusPill({ status }: { status: string }) {
  return (
    <span class={`pill st-${status}`} data-status={status}>
      <span class="pdot" />
      {STATUS_LABEL[status] ?? status}
    </span>
  );
}
