import { useState } from 'preact/hooks';
import * as api from '../api';
import { Dialog, TextField } from './Dialog';

// The operator's dialogs on a run: roll back to a checkpoint, decide an approval, and the actions that only ask for a confirmation (fork, retry).

export function RollbackDialog({
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
  const { busy, error, submit } = useConfirm(onClose, onDone);
  return (
    <Dialog
      title={`Roll back ${runId}?`}
      confirmLabel="Roll back"
      danger
      busy={busy}
      error={error}
      disabled={reason.trim() === ''}
      onCancel={onClose}
      onConfirm={() =>
        submit(() => {
          onBegin();
          return api.rollback(runId, { to, reason: reason.trim(), after });
        })
      }
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
      <TextField label="reason (recorded in the log)" name="reason" value={reason} placeholder="why" onInput={setReason} />
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

export function SimpleAction({
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
  const { busy, error, submit } = useConfirm(onClose, onDone);
  return (
    <Dialog title={title} confirmLabel={confirm} busy={busy} error={error} onCancel={onClose} onConfirm={() => submit(run)}>
      <p>{text}</p>
    </Dialog>
  );
}

/** A reviewer's yes or no to what the run asks approval for; a no needs a reason, and goes through the run's failure policy. */
export function DecisionDialog({
  runId,
  label,
  details,
  approve,
  onClose,
  onDone,
}: {
  runId: string;
  label: string;
  details: unknown;
  approve: boolean;
  onClose(): void;
  onDone(info: api.ActionResult): void;
}) {
  const [reason, setReason] = useState('');
  const [actor, setActor] = useState('');
  const { busy, error, submit } = useConfirm(onClose, onDone);
  return (
    <Dialog
      title={`${approve ? 'Approve' : 'Reject'} “${label}” for ${runId}?`}
      confirmLabel={approve ? 'Approve' : 'Reject'}
      danger={!approve}
      busy={busy}
      error={error}
      disabled={!approve && reason.trim() === ''}
      onCancel={onClose}
      onConfirm={() =>
        submit(() => {
          const who = actor.trim() ? { actor: actor.trim() } : {};
          return api.decide(runId, label, { approved: approve, ...(reason.trim() ? { reason: reason.trim() } : {}), ...who });
        })
      }
    >
      <p>
        {approve
          ? 'The run goes on from its approval. Your decision, your reason and your name are recorded in the log.'
          : "A rejection is a trigger: the run's failure policy decides what follows (for example a rollback that compensates). It is recorded with your reason and name."}
      </p>
      {details === undefined ? null : <pre class="details">{JSON.stringify(details, null, 2)}</pre>}
      <TextField label={`reason${approve ? ' (optional)' : ''}`} name="reason" value={reason} placeholder="why" onInput={setReason} />
      <TextField label="your name (recorded as the actor)" name="actor" value={actor} placeholder="optional" onInput={setActor} />
    </Dialog>
  );
}

/**
 * A dialog's confirm: busy while its request runs; on success the dialog
 * closes and reports the result, on failure it shows the API's message and
 * hint and can be tried again.
 */
export function useConfirm<T = api.ActionResult>(onClose: () => void, onDone: (result: T) => void) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const submit = async (request: () => Promise<T>) => {
    setBusy(true);
    setError(undefined);
    try {
      const info = await request();
      onClose();
      onDone(info);
    } catch (e) {
      setError(e instanceof api.ApiError ? `${e.message}${e.hint ? ` (${e.hint})` : ''}` : String(e));
      setBusy(false);
    }
  };
  return { busy, error, submit };
}
