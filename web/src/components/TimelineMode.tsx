// The timeline of a long video: pick a file (or drop or paste one, or a link), watch its
// segments appear on the bar as the server finds them, choose one to see where it is from.

import { useCallback, useEffect, useRef, useState } from "react";
import type { Source } from "../api/post";
import { Problem } from "../api/problem";
import { timeline, type TimelineProgress, type TimelineSegment } from "../api/timeline";
import { timestamp } from "../lib/format";
import { ProblemMessage } from "./ProblemMessage";
import { LinkForm, looksLikeLink } from "./LinkForm";
import { TimelineView } from "./TimelineView";

type State =
  | { kind: "idle"; notice?: string }
  | { kind: "running"; name: string; progress: TimelineProgress; segments: TimelineSegment[] }
  | { kind: "done"; name: string; segments: TimelineSegment[]; durationS: number }
  | { kind: "problem"; problem: Problem };

interface Props {
  timelineImpl?: typeof timeline;
  onStatus?: (text: string) => void;
}

function progressText(p: TimelineProgress): string {
  switch (p.stage) {
    case "sending":
      return p.percent != null ? `Uploading… ${Math.round(p.percent)} %` : "Sending…";
    case "received":
    case "decoding":
      return "Opening the video…";
    case "downloading":
      return p.percent != null ? `Downloading… ${Math.round(p.percent)} %` : "Downloading…";
    case "reading":
      if (p.doneS != null && p.totalS != null) {
        return `Read ${timestamp(p.doneS)} of ${timestamp(p.totalS)} (${Math.round(p.percent ?? 0)} %)`;
      }
      return p.doneS != null ? `Read ${timestamp(p.doneS)}` : "Reading…";
  }
}

export function TimelineMode({ timelineImpl = timeline, onStatus }: Props) {
  const [state, setState] = useState<State>({ kind: "idle" });
  const [link, setLink] = useState("");
  const job = useRef<AbortController | null>(null);
  const fileInput = useRef<HTMLInputElement>(null);

  const start = useCallback(
    (source: Source) => {
      job.current?.abort();
      const controller = new AbortController();
      job.current = controller;
      const name = source.kind === "file" ? source.name : source.url;
      setState({ kind: "running", name, progress: { stage: "sending" }, segments: [] });
      onStatus?.("Making the timeline…");
      timelineImpl(source, {
        signal: controller.signal,
        onProgress: (progress) => {
          if (controller.signal.aborted) return;
          setState((s) => (s.kind === "running" ? { ...s, progress } : s));
        },
        onSegment: (segment) => {
          if (controller.signal.aborted) return;
          setState((s) => (s.kind === "running" ? { ...s, segments: [...s.segments, segment] } : s));
        },
      }).then(
        (result) => {
          if (controller.signal.aborted) return;
          job.current = null;
          const found = result.segments.filter((s) => s.status !== "unknown").length;
          onStatus?.(`Done: ${found} scene${found === 1 ? "" : "s"} from the library.`);
          setState({ kind: "done", name, segments: result.segments, durationS: result.duration_s });
        },
        (err: unknown) => {
          if (controller.signal.aborted) return;
          job.current = null;
          setState({ kind: "problem", problem: err instanceof Problem ? err : new Problem("unknown") });
        },
      );
    },
    [timelineImpl, onStatus],
  );

  const cancel = useCallback(() => {
    job.current?.abort();
    job.current = null;
    onStatus?.("Cancelled.");
    setState({ kind: "idle", notice: "Cancelled. The server stopped working on it." });
  }, [onStatus]);

  useEffect(() => () => job.current?.abort(), []);

  // Drop or paste a long video anywhere while this view is open.
  useEffect(() => {
    const hasFiles = (e: DragEvent) => Array.from(e.dataTransfer?.types ?? []).includes("Files");
    const over = (e: DragEvent) => {
      if (hasFiles(e)) e.preventDefault();
    };
    const drop = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      const file = e.dataTransfer?.files?.[0];
      if (file) start({ kind: "file", file, name: file.name });
    };
    const paste = (e: ClipboardEvent) => {
      const text = e.clipboardData?.getData("text/plain").trim() ?? "";
      const file = e.clipboardData?.files?.[0];
      if (file) start({ kind: "file", file, name: file.name || "pasted video" });
      else if (looksLikeLink(text)) {
        setLink(text);
        start({ kind: "link", url: text });
      }
    };
    window.addEventListener("dragover", over);
    window.addEventListener("drop", drop);
    document.addEventListener("paste", paste);
    return () => {
      window.removeEventListener("dragover", over);
      window.removeEventListener("drop", drop);
      document.removeEventListener("paste", paste);
    };
  }, [start]);

  const again = () => setState({ kind: "idle" });

  return (
    <div className="timeline-mode" data-testid="timeline-mode">
      {state.kind === "running" && (
        <section className="card" aria-labelledby="tl-progress-title" aria-busy="true">
          <h2 id="tl-progress-title" className="visually-hidden">
            Making the timeline
          </h2>
          <p className="source-name" title={state.name}>
            {state.name}
          </p>
          <div className="tl-progress">
            <p data-testid="timeline-progress">{progressText(state.progress)}</p>
            <button type="button" className="button" onClick={cancel}>
              Cancel
            </button>
          </div>
          <TimelineView
            segments={state.segments}
            totalS={state.progress.totalS ?? null}
            doneS={state.progress.doneS ?? null}
            running
          />
        </section>
      )}
      {state.kind === "done" && (
        <section className="card" aria-label="Timeline">
          <p className="source-name" title={state.name}>
            {state.name} · {timestamp(state.durationS)}
          </p>
          <TimelineView segments={state.segments} totalS={state.durationS} />
          <button type="button" className="button" onClick={again}>
            Another video
          </button>
        </section>
      )}
      {state.kind === "problem" && <ProblemMessage problem={state.problem} onDismiss={again} />}
      {state.kind === "idle" && (
        <section className="card tl-form" aria-labelledby="tl-pick-title">
          <h2 id="tl-pick-title">Timeline of a long video</h2>
          <p>
            A compilation, a reaction video or a stream recording: every scene gets its episode and its place in it,
            as the video is read.
          </p>
          {state.notice && (
            <p className="notice" data-testid="notice">
              {state.notice}
            </p>
          )}
          <div className="row">
            <button type="button" className="button primary" onClick={() => fileInput.current?.click()}>
              Choose a video
            </button>
            <input
              ref={fileInput}
              type="file"
              accept="video/*,audio/*"
              className="visually-hidden"
              tabIndex={-1}
              aria-hidden="true"
              data-testid="timeline-file-input"
              onChange={(e) => {
                const file = e.target.files?.[0];
                if (file) start({ kind: "file", file, name: file.name });
                e.target.value = "";
              }}
            />
          </div>
          <LinkForm
            id="timeline-link"
            label="Or paste a link"
            submitLabel="Make the timeline"
            value={link}
            onChange={setLink}
            onSubmit={(url) => start({ kind: "link", url })}
          />
        </section>
      )}
    </div>
  );
}
