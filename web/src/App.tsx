// The page: one identification at a time, as a small state machine
// idle → working → result | problem, with drop and paste anywhere.

import { useCallback, useEffect, useRef, useState } from "react";
import { identify, type ProgressUpdate, type Source } from "./api/identify";
import { Problem } from "./api/problem";
import type { IdentifyResult } from "./api/types";
import { Logo } from "./components/Icons";
import { LibraryView } from "./components/LibraryView";
import { ProblemMessage } from "./components/ProblemMessage";
import { ProgressPanel, stageLabel } from "./components/ProgressPanel";
import { ResultCard } from "./components/ResultCard";
import { SourcePicker, looksLikeLink, type SourcePickerHandle } from "./components/SourcePicker";
import { decodeResult, encodeResult } from "./lib/share";

type View =
  | { kind: "idle"; notice?: string }
  | { kind: "working"; source: Source; progress: ProgressUpdate }
  | { kind: "result"; result: IdentifyResult; shared: boolean }
  | { kind: "problem"; problem: Problem };

interface Props {
  identifyImpl?: typeof identify;
}

function initialView(): View {
  const shared = decodeResult(window.location.hash);
  return shared ? { kind: "result", result: shared, shared: true } : { kind: "idle" };
}

function setFragment(fragment: string) {
  const url = new URL(window.location.href);
  url.hash = fragment;
  const next = fragment ? url.toString() : url.toString().replace(/#$/, "");
  window.history.replaceState(null, "", next);
}

function isEditable(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable) return true;
  if (target instanceof HTMLTextAreaElement) return true;
  return target instanceof HTMLInputElement && !["button", "submit", "checkbox", "radio", "file"].includes(target.type);
}

export function App({ identifyImpl = identify }: Props) {
  const [view, setView] = useState<View>(initialView);
  const [announcement, setAnnouncement] = useState("");
  const [dragging, setDragging] = useState(false);
  const [link, setLink] = useState("");
  const job = useRef<AbortController | null>(null);
  const picker = useRef<SourcePickerHandle>(null);
  const lastStage = useRef("");
  const firstView = useRef(true);

  const start = useCallback(
    (source: Source) => {
      job.current?.abort();
      const controller = new AbortController();
      job.current = controller;
      setFragment("");
      lastStage.current = "";
      setView({ kind: "working", source, progress: { stage: "sending" } });
      identifyImpl(source, {
        signal: controller.signal,
        onProgress: (progress) => {
          if (controller.signal.aborted) return;
          setView((v) =>
            v.kind === "working"
              ? { ...v, progress: progress.stage === v.progress.stage ? { ...v.progress, ...progress } : progress }
              : v,
          );
          const label = stageLabel(source.kind, progress.stage);
          if (label !== lastStage.current) {
            lastStage.current = label;
            setAnnouncement(`${label}…`);
          }
        },
      }).then(
        (result) => {
          if (controller.signal.aborted) return;
          job.current = null;
          setFragment(encodeResult(result));
          setAnnouncement("");
          setView({ kind: "result", result, shared: false });
        },
        (err: unknown) => {
          if (controller.signal.aborted) return;
          job.current = null;
          setAnnouncement("");
          setView({ kind: "problem", problem: err instanceof Problem ? err : new Problem("unknown") });
        },
      );
    },
    [identifyImpl],
  );

  const cancel = useCallback(() => {
    job.current?.abort();
    job.current = null;
    setAnnouncement("Cancelled.");
    setView({ kind: "idle", notice: "Cancelled. The server stopped working on it." });
  }, []);

  const reset = useCallback(() => {
    setFragment("");
    setView({ kind: "idle" });
  }, []);

  const showProblem = useCallback((problem: Problem) => setView({ kind: "problem", problem }), []);

  // Back to the picker: put the keyboard focus on it.
  useEffect(() => {
    if (view.kind === "idle" && !firstView.current) picker.current?.focus();
    firstView.current = false;
  }, [view.kind]);

  // A shared link opened in this tab.
  useEffect(() => {
    const onHash = () => {
      const shared = decodeResult(window.location.hash);
      if (shared) setView({ kind: "result", result: shared, shared: true });
    };
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);

  // Drop a file anywhere on the page.
  useEffect(() => {
    let depth = 0;
    const hasFiles = (e: DragEvent) => Array.from(e.dataTransfer?.types ?? []).includes("Files");
    const enter = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth += 1;
      setDragging(true);
    };
    const over = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      if (e.dataTransfer) e.dataTransfer.dropEffect = "copy";
    };
    const leave = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      depth = Math.max(0, depth - 1);
      if (depth === 0) setDragging(false);
    };
    const drop = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth = 0;
      setDragging(false);
      const file = e.dataTransfer?.files?.[0];
      if (file) start({ kind: "file", file, name: file.name });
    };
    window.addEventListener("dragenter", enter);
    window.addEventListener("dragover", over);
    window.addEventListener("dragleave", leave);
    window.addEventListener("drop", drop);
    return () => {
      window.removeEventListener("dragenter", enter);
      window.removeEventListener("dragover", over);
      window.removeEventListener("dragleave", leave);
      window.removeEventListener("drop", drop);
    };
  }, [start]);

  // Paste a link (or a file) anywhere, the link field included: it starts at once.
  useEffect(() => {
    const paste = (e: ClipboardEvent) => {
      const data = e.clipboardData;
      if (!data) return;
      const target = e.target as HTMLElement | null;
      const inLinkField = target instanceof HTMLInputElement && target.id === "link";
      if (isEditable(target) && !inLinkField) return;
      const file = data.files?.[0];
      if (file) {
        e.preventDefault();
        start({ kind: "file", file, name: file.name || "pasted clip" });
        return;
      }
      const text = data.getData("text/plain").trim();
      if (looksLikeLink(text)) {
        e.preventDefault();
        setLink(text);
        start({ kind: "link", url: text });
      }
    };
    document.addEventListener("paste", paste);
    return () => document.removeEventListener("paste", paste);
  }, [start]);

  useEffect(() => () => job.current?.abort(), []);

  return (
    <>
      <header className="masthead">
        <h1>
          <Logo /> CityWok
        </h1>
        <p className="tagline">Which episode is this clip from, and where?</p>
      </header>

      <main id="main">
        {view.kind === "working" ? (
          <ProgressPanel
            kind={view.source.kind}
            name={view.source.kind === "file" ? view.source.name : view.source.url}
            progress={view.progress}
            onCancel={cancel}
          />
        ) : view.kind === "result" ? (
          <ResultCard result={view.result} shared={view.shared} onAgain={reset} onStatus={setAnnouncement} />
        ) : (
          <>
            {view.kind === "problem" && <ProblemMessage problem={view.problem} onDismiss={reset} />}
            {view.kind === "idle" && view.notice && (
              <p className="notice" data-testid="notice">
                {view.notice}
              </p>
            )}
            <SourcePicker
              ref={picker}
              onStart={start}
              onProblem={showProblem}
              onStatus={setAnnouncement}
              link={link}
              onLinkChange={setLink}
            />
          </>
        )}
        <p className="visually-hidden" role="status" aria-live="polite" data-testid="live">
          {announcement}
        </p>
      </main>

      <LibraryView />

      <footer className="footer">
        <p>
          Clips are deleted as soon as they are identified. Developers: <a href="/docs">the API</a>.
        </p>
      </footer>

      {dragging && (
        <div className="drop-overlay" aria-hidden="true">
          <p>Drop to identify</p>
        </div>
      )}
    </>
  );
}
