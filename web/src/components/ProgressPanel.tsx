// Live progress of one identification: each stage by name, download percent, cancel.

import { useEffect, useRef } from "react";
import type { ProgressUpdate, Stage } from "../api/identify";
import { bytes, wait } from "../lib/format";

interface Props {
  kind: "file" | "link";
  name: string;
  progress: ProgressUpdate;
  onCancel: () => void;
}

interface Step {
  id: Stage;
  label: string;
}

const FILE_STEPS: Step[] = [
  { id: "sending", label: "Uploading the clip" },
  { id: "decoding", label: "Reading the sound" },
  { id: "fingerprinting", label: "Fingerprinting" },
  { id: "matching", label: "Searching the library" },
];
const LINK_STEPS: Step[] = [
  { id: "sending", label: "Checking the link" },
  { id: "downloading", label: "Downloading the video" },
  { id: "decoding", label: "Reading the sound" },
  { id: "fingerprinting", label: "Fingerprinting" },
  { id: "matching", label: "Searching the library" },
];

/** The label of the stage the server is in, for the live region. */
export function stageLabel(kind: "file" | "link", stage: Stage): string {
  const steps = kind === "file" ? FILE_STEPS : LINK_STEPS;
  const effective = stage === "received" ? (kind === "file" ? "decoding" : "downloading") : stage;
  return steps.find((s) => s.id === effective)?.label ?? "Working";
}

function position(steps: Step[], stage: Stage): number {
  if (stage === "received") return 1; // the server has it: the first step is done
  const i = steps.findIndex((s) => s.id === stage);
  return i === -1 ? 0 : i;
}

export function ProgressPanel({ kind, name, progress, onCancel }: Props) {
  const cancel = useRef<HTMLButtonElement>(null);
  useEffect(() => cancel.current?.focus(), []);
  const steps = kind === "file" ? FILE_STEPS : LINK_STEPS;
  const current = position(steps, progress.stage);
  const downloading = progress.stage === "downloading";
  const uploading = progress.stage === "sending" && kind === "file" && progress.percent != null;
  const pct =
    (downloading || uploading) && progress.percent != null ? Math.min(100, Math.max(0, progress.percent)) : null;

  return (
    <section className="card progress" aria-labelledby="progress-title" aria-busy="true">
      <h2 id="progress-title">Identifying…</h2>
      <p className="source-name" title={name}>
        {name}
      </p>
      <ol className="steps">
        {steps.map((step, i) => {
          const state = i < current ? "done" : i === current ? "current" : "todo";
          return (
            <li key={step.id} className={`step ${state}`} aria-current={state === "current" ? "step" : undefined}>
              <span className="step-mark" aria-hidden="true">
                {state === "done" ? "✓" : state === "current" ? "●" : "○"}
              </span>
              <span>
                {step.label}
                {state === "done" && <span className="visually-hidden"> (done)</span>}
                {(step.id === "downloading" || (step.id === "sending" && kind === "file")) &&
                  state === "current" &&
                  pct != null &&
                  ` (${Math.round(pct)} %)`}
              </span>
            </li>
          );
        })}
      </ol>
      {(downloading || uploading) && (
        <div className="download">
          <progress max={100} value={pct ?? undefined} aria-label={uploading ? "Upload progress" : "Download progress"}>
            {pct != null ? `${Math.round(pct)} %` : "unknown"}
          </progress>
          {progress.bytes != null && progress.bytes > 0 && (
            <span className="hint">
              {bytes(progress.bytes)}
              {progress.total ? ` of ${bytes(progress.total)}` : ""}
            </span>
          )}
        </div>
      )}
      {progress.queue != null && (
        <p className="hint">
          {progress.queue.position === 1
            ? "Next in line"
            : `Waiting for its turn: ${progress.queue.position} clips in line`}
          {progress.queue.expectedWaitS >= 1 ? ` (about ${wait(progress.queue.expectedWaitS)})` : ""}…
        </p>
      )}
      {progress.elapsedS != null && progress.elapsedS >= 5 && (
        <p className="hint">Still working ({Math.round(progress.elapsedS)} s)…</p>
      )}
      <button ref={cancel} type="button" className="button" onClick={onCancel}>
        Cancel
      </button>
    </section>
  );
}
