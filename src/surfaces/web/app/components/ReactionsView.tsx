import { useEffect, useRef, useState } from 'preact/hooks';
import * as api from '../api';
import { age, plural, type ReactionStatus } from '../model';
import { Dialog, TextField } from './Dialog';
import { useConfirm } from './RunActions';

interface Props {
  onError(error: unknown): void;
  onLive(connected: boolean): void;
  toast(text: string, kind?: 'ok' | 'error'): void;
}

type Settle = { name: string; how: 'skip' | 'retry' };

/** How often the page reads the statuses again: a reaction's position moves after it acts, and no event says so. */
const POLL_MS = 2000;

/**
 * Every reaction that has run against the log (GET /reactions, read from the
 * log): state, position, how far behind, who runs it, and for one parked on an
 * event that event, the error and since when, with the operator's Retry and Skip.
 */
export function ReactionsView({ onError, onLive, toast }: Props) {
  const [reactions, setReactions] = useState<ReactionStatus[] | undefined>(undefined);
  const [settle, setSettle] = useState<Settle | undefined>();
  const reload = useRef<() => void>(() => {});

  useEffect(() => {
    let cancelled = false;
    let failing = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = () =>
      api
        .listReactions()
        .then((r) => {
          failing = false;
          if (!cancelled) setReactions(r);
        })
        .catch((e) => {
          if (cancelled) return;
          // Said once, not at every poll while the server is away.
          if (!failing) onError(e);
          failing = true;
          setReactions((r) => r ?? []);
        });
    reload.current = () => void load();
    void load();
    // An event may park a reaction or wake it (its control stream is in the log too): read again, at most every 300 ms.
    const stop = api.follow(
      {},
      () => {
        clearTimeout(timer);
        timer = setTimeout(load, 300);
      },
      onLive,
    );
    const poll = setInterval(load, POLL_MS);
    return () => {
      cancelled = true;
      stop();
      clearInterval(poll);
      clearTimeout(timer);
      onLive(false);
    };
  }, []);

  const parked = (reactions ?? []).filter((r) => r.state === 'parked').length;
  const settling = settle && reactions?.find((r) => r.name === settle.name);

  return (
    <section class="page reactions-page">
      <div class="toolbar">
        <h1>Reactions</h1>
        {reactions && reactions.length > 0 ? (
          <span class="dim" data-testid="reactions-summary">
            {plural(reactions.length, 'reaction')} · {parked} parked
          </span>
        ) : null}
      </div>
      {reactions === undefined ? (
        <p class="empty">Loading reactions…</p>
      ) : reactions.length === 0 ? (
        <p class="empty">
          No reaction has run against this log yet: give them to <code>createRuntime({'{ reactions }'})</code> or{' '}
          <code>rewind worker --workflows</code>.
        </p>
      ) : (
        <table class="runs reactions" data-testid="reactions">
          <thead>
            <tr>
              <th>state</th>
              <th>reaction</th>
              <th class="num">position</th>
              <th class="num">behind</th>
              <th>held by</th>
              <th>parked on</th>
              <th aria-label="actions" />
            </tr>
          </thead>
          <tbody>
            {reactions.map((r) => (
              <tr key={r.name} data-reaction={r.name} data-state={r.state}>
                <td>
                  <span class={`pill st-${r.state}`} data-state={r.state}>
                    <span class="pdot" />
                    {r.state}
                  </span>
                </td>
                <td>
                  <span class="mono">{r.name}</span>
                  {r.skipped > 0 ? <span class="dim"> · {plural(r.skipped, 'event')} skipped</span> : null}
                </td>
                <td class="num mono">{r.position}</td>
                <td class="num mono" data-testid="behind">
                  {r.lagEvents}
                </td>
                <td>
                  {r.heldBy ? (
                    <span class="mono" title={`its lease runs until ${r.heldBy.until}`}>
                      {r.heldBy.owner}
                    </span>
                  ) : (
                    <span class="dim">no one</span>
                  )}
                </td>
                <td>{r.parked ? <Parked parked={r.parked} /> : null}</td>
                <td class="row-actions">
                  {r.parked ? (
                    <>
                      <button
                        type="button"
                        class="btn small"
                        data-action="retry"
                        title="try the event again, with fresh attempts"
                        onClick={() => setSettle({ name: r.name, how: 'retry' })}
                      >
                        ⟳ Retry…
                      </button>
                      <button
                        type="button"
                        class="btn small danger"
                        data-action="skip"
                        title="go past the event without acting on it"
                        onClick={() => setSettle({ name: r.name, how: 'skip' })}
                      >
                        Skip…
                      </button>
                    </>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {settle && settling?.parked ? (
        <SettleDialog
          reaction={settling}
          how={settle.how}
          onClose={() => setSettle(undefined)}
          onDone={() => {
            toast(
              settle.how === 'skip'
                ? `Skipped: ${settle.name} goes on past event ${settling.parked?.position}`
                : `Retrying: ${settle.name} tries event ${settling.parked?.position} again`,
            );
            reload.current();
          }}
        />
      ) : null}
    </section>
  );
}

/** The event a reaction waits on, why, and since when; a run's event links to the run. */
function Parked({ parked }: { parked: NonNullable<ReactionStatus['parked']> }) {
  const runId = parked.streamId.startsWith('run-') ? parked.streamId.slice('run-'.length) : undefined;
  return (
    <div class="parked" data-testid="parked">
      <div>
        event <span class="mono">{parked.position}</span> <b>{parked.type}</b> of{' '}
        {runId ? (
          <a class="mono" href={`#/runs/${encodeURIComponent(runId)}`}>
            {parked.streamId}
          </a>
        ) : (
          <span class="mono">{parked.streamId}</span>
        )}{' '}
        <span class="dim" title={parked.at}>
          · {age(parked.at)} · after {plural(parked.attempts, 'attempt')}
        </span>
      </div>
      <div class="parked-error" data-testid="parked-error">
        {parked.error.code ? `${parked.error.code}: ` : `${parked.error.name}: `}
        {parked.error.message}
      </div>
    </div>
  );
}

/** Asks for the reason (required to skip: the event is then never acted on) and the operator's name, both recorded in the log. */
function SettleDialog({
  reaction,
  how,
  onClose,
  onDone,
}: {
  reaction: ReactionStatus;
  how: 'skip' | 'retry';
  onClose(): void;
  onDone(status: ReactionStatus): void;
}) {
  const [reason, setReason] = useState('');
  const [actor, setActor] = useState('');
  const { busy, error, submit } = useConfirm<ReactionStatus>(onClose, onDone);
  const event = reaction.parked ? `event ${reaction.parked.position} (${reaction.parked.type})` : 'its event';
  return (
    <Dialog
      title={how === 'skip' ? `Skip ${event} for ${reaction.name}?` : `Retry ${event} for ${reaction.name}?`}
      confirmLabel={how === 'skip' ? 'Skip' : 'Retry'}
      danger={how === 'skip'}
      busy={busy}
      error={error}
      disabled={how === 'skip' && reason.trim() === ''}
      onCancel={onClose}
      onConfirm={() =>
        submit(() =>
          api.settleReaction(reaction.name, how, {
            ...(reason.trim() ? { reason: reason.trim() } : {}),
            ...(actor.trim() ? { actor: actor.trim() } : {}),
          }),
        )
      }
    >
      <p>
        {how === 'skip'
          ? 'The reaction goes past this event without acting on it, now and if it is ever delivered again. Recorded in its control stream with your reason and name.'
          : 'The reaction tries this event again with fresh attempts (fix the cause first). Recorded in its control stream with your reason and name.'}
      </p>
      <TextField
        label={`reason${how === 'skip' ? ' (recorded in the log)' : ' (optional)'}`}
        name="reason"
        value={reason}
        placeholder="why"
        onInput={setReason}
      />
      <TextField label="your name (recorded as the actor)" name="actor" value={actor} placeholder="optional" onInput={setActor} />
    </Dialog>
  );
}
