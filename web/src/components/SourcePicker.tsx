// The three ways in: Listen first (the main action), then a file (picked, or dropped
// anywhere on the page) or a link.

import { forwardRef, useImperativeHandle, useRef, useState, type FormEvent } from "react";
import type { Problem } from "../api/problem";
import type { Source } from "../api/identify";
import type { IdentifyResult } from "../api/types";
import { Listen } from "./Listen";

export interface SourcePickerHandle {
  focus: () => void;
}

interface Props {
  onStart: (source: Source) => void;
  /** An answer reached by listening. */
  onResult: (result: IdentifyResult) => void;
  /** An answer reached by listening that Listen goes on following. */
  onAnswer?: (result: IdentifyResult) => void;
  onProblem: (problem: Problem) => void;
  onStatus: (text: string) => void;
  link: string;
  onLinkChange: (value: string) => void;
}

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

export const SourcePicker = forwardRef<SourcePickerHandle, Props>(function SourcePicker(
  { onStart, onResult, onAnswer, onProblem, onStatus, link, onLinkChange },
  ref,
) {
  const fileInput = useRef<HTMLInputElement>(null);
  const chooseButton = useRef<HTMLButtonElement>(null);
  const [linkError, setLinkError] = useState<string | null>(null);

  useImperativeHandle(ref, () => ({ focus: () => chooseButton.current?.focus() }), []);

  function pick(files: FileList | null) {
    const file = files?.[0];
    if (file) onStart({ kind: "file", file, name: file.name });
    if (fileInput.current) fileInput.current.value = "";
  }

  function submitLink(e: FormEvent) {
    e.preventDefault();
    const url = link.trim();
    if (!looksLikeLink(url)) {
      setLinkError("Paste a full link, starting with https://");
      return;
    }
    setLinkError(null);
    onStart({ kind: "link", url });
  }

  return (
    <section className="picker" aria-labelledby="picker-title">
      <h2 id="picker-title" className="visually-hidden">
        Identify a clip
      </h2>
      <Listen onResult={onResult} onAnswer={onAnswer} onProblem={onProblem} onStatus={onStatus} />
      <p className="or" aria-hidden="true">
        or
      </p>
      <div className="drop-target">
        <p className="drop-text">
          <strong>Drop a video or audio clip</strong> anywhere on this page
        </p>
        <button ref={chooseButton} type="button" className="button" onClick={() => fileInput.current?.click()}>
          Choose a file
        </button>
        <input
          ref={fileInput}
          type="file"
          accept="video/*,audio/*"
          className="visually-hidden"
          tabIndex={-1}
          aria-hidden="true"
          data-testid="file-input"
          onChange={(e) => pick(e.target.files)}
        />
      </div>

      <form className="link-form" onSubmit={submitLink} noValidate>
        <label htmlFor="link">Or paste a link (TikTok, YouTube, Instagram…)</label>
        <div className="row">
          <input
            id="link"
            name="url"
            type="url"
            inputMode="url"
            autoComplete="off"
            spellCheck={false}
            placeholder="https://"
            value={link}
            onChange={(e) => onLinkChange(e.target.value)}
            aria-invalid={linkError ? true : undefined}
            aria-describedby={linkError ? "link-error" : "link-help"}
          />
          <button type="submit" className="button">
            Identify link
          </button>
        </div>
        {linkError ? (
          <p id="link-error" className="field-error">
            {linkError}
          </p>
        ) : (
          <p id="link-help" className="hint">
            Pasting a link anywhere on the page starts right away.
          </p>
        )}
      </form>
    </section>
  );
});
