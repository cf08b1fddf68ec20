// The three ways in: Listen first (the main action), then a file (picked, or dropped
// anywhere on the page) or a link.

import { forwardRef, useImperativeHandle, useRef } from "react";
import type { Problem } from "../api/problem";
import type { Source } from "../api/post";
import type { IdentifyResult } from "../api/types";
import { LinkForm } from "./LinkForm";
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

export const SourcePicker = forwardRef<SourcePickerHandle, Props>(function SourcePicker(
  { onStart, onResult, onAnswer, onProblem, onStatus, link, onLinkChange },
  ref,
) {
  const fileInput = useRef<HTMLInputElement>(null);
  const chooseButton = useRef<HTMLButtonElement>(null);

  useImperativeHandle(ref, () => ({ focus: () => chooseButton.current?.focus() }), []);

  function pick(files: FileList | null) {
    const file = files?.[0];
    if (file) onStart({ kind: "file", file, name: file.name });
    if (fileInput.current) fileInput.current.value = "";
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
          <strong>Drop a video, an audio clip or a screenshot</strong> anywhere on this page
        </p>
        <button ref={chooseButton} type="button" className="button" onClick={() => fileInput.current?.click()}>
          Choose a file
        </button>
        <input
          ref={fileInput}
          type="file"
          accept="video/*,audio/*,image/png,image/jpeg,image/webp"
          className="visually-hidden"
          tabIndex={-1}
          aria-hidden="true"
          data-testid="file-input"
          onChange={(e) => pick(e.target.files)}
        />
      </div>

      <LinkForm
        id="link"
        className="link-form"
        label="Or paste a link (TikTok, YouTube, Instagram…)"
        submitLabel="Identify link"
        hint="Pasting a link anywhere on the page starts right away."
        value={link}
        onChange={onLinkChange}
        onSubmit={(url) => onStart({ kind: "link", url })}
      />
    </section>
  );
});
