// A link to paste and send (Identify's and Timeline's): it must look like a link before it
// goes, and the field says why not when it does not.

import { useState, type FormEvent } from "react";

/** Whether ``text`` looks like a web link worth sending. */
export function looksLikeLink(text: string): boolean {
  const t = text.trim();
  if (!/^https?:\/\/\S+$/i.test(t)) return false;
  try {
    return Boolean(new URL(t).hostname);
  } catch {
    return false;
  }
}

interface Props {
  /** The field's id (its error and hint are named after it). */
  id: string;
  label: string;
  submitLabel: string;
  value: string;
  onChange: (value: string) => void;
  onSubmit: (url: string) => void;
  /** Shown under the field while there is no error. */
  hint?: string;
  className?: string;
}

export function LinkForm({ id, label, submitLabel, value, onChange, onSubmit, hint, className }: Props) {
  const [error, setError] = useState<string | null>(null);

  function submit(e: FormEvent) {
    e.preventDefault();
    const url = value.trim();
    if (!looksLikeLink(url)) {
      setError("Paste a full link, starting with https://");
      return;
    }
    setError(null);
    onSubmit(url);
  }

  return (
    <form className={className} onSubmit={submit} noValidate>
      <label htmlFor={id}>{label}</label>
      <div className="row">
        <input
          id={id}
          name="url"
          type="url"
          inputMode="url"
          autoComplete="off"
          spellCheck={false}
          placeholder="https://"
          value={value}
          onChange={(e) => onChange(e.target.value)}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? `${id}-error` : hint ? `${id}-help` : undefined}
        />
        <button type="submit" className="button">
          {submitLabel}
        </button>
      </div>
      {error ? (
        <p id={`${id}-error`} className="field-error">
          {error}
        </p>
      ) : (
        hint && (
          <p id={`${id}-help`} className="hint">
            {hint}
          </p>
        )
      )}
    </form>
  );
}
