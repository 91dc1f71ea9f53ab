import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

interface Props {
  title: string;
  children: ComponentChildren;
  confirmLabel: string;
  /** Red button for actions that change the world (compensations run). */
  danger?: boolean;
  busy?: boolean;
  error?: string | undefined;
  disabled?: boolean;
  onConfirm(): void;
  onCancel(): void;
}

/** A modal asking for confirmation. Escape cancels; Enter in a field confirms. */
export function Dialog({ title, children, confirmLabel, danger, busy, error, disabled, onConfirm, onCancel }: Props) {
  const box = useRef<HTMLFormElement>(null);
  useEffect(() => {
    const first = box.current?.querySelector<HTMLElement>('input, textarea, select, button.primary');
    first?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        onCancel();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
  return (
    // biome-ignore lint/a11y/useKeyWithClickEvents: Escape cancels from the keyboard (window listener above)
    <div
      class="modal-back"
      role="dialog"
      aria-modal="true"
      aria-label={title}
      onClick={(e) => e.target === e.currentTarget && !busy && onCancel()}
    >
      <form
        class="modal"
        aria-label={title}
        ref={box}
        onSubmit={(e) => {
          e.preventDefault();
          if (!busy && !disabled) onConfirm();
        }}
      >
        <h2>{title}</h2>
        <div class="modal-body">{children}</div>
        {error ? (
          <p class="error" role="alert">
            {error}
          </p>
        ) : null}
        <div class="modal-actions">
          <button type="button" class="btn" onClick={onCancel} disabled={busy} data-testid="cancel">
            Cancel
          </button>
          <button type="submit" class={`btn primary${danger ? ' danger' : ''}`} disabled={busy || disabled} data-testid="confirm">
            {busy ? 'Working…' : confirmLabel}
          </button>
        </div>
      </form>
    </div>
  );
}

/** A labelled one-line text input of a dialog (its `name` is what the tests and the form know it by). */
export function TextField({
  label,
  name,
  value,
  placeholder,
  onInput,
}: {
  label: string;
  name: string;
  value: string;
  placeholder: string;
  onInput(value: string): void;
}) {
  return (
    <label class="field block">
      <span>{label}</span>
      <input
        type="text"
        name={name}
        value={value}
        placeholder={placeholder}
        onInput={(e) => onInput((e.target as HTMLInputElement).value)}
      />
    </label>
  );
}
