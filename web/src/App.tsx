// The page: one identification at a time, as a small state machine
// idle → working → result | problem, with drop and paste anywhere. A shared answer opens
// from its short link (/r/<id>) or, for older links, from the #r= fragment.

import { useCallback, useEffect, useRef, useState } from "react";
import { identify, type ProgressUpdate, type Source } from "./api/identify";
import { Problem } from "./api/problem";
import type { IdentifyResult } from "./api/types";
import { Logo } from "./components/Icons";
import { LibraryView } from "./components/LibraryView";
import { ProblemMessage } from "./components/ProblemMessage";
import { ProgressPanel, stageLabel } from "./components/ProgressPanel";
import { ResultCard } from "./components/ResultCard";
import { looksLikeLink } from "./components/LinkForm";
import { SourcePicker, type SourcePickerHandle } from "./components/SourcePicker";
import { TimelineMode } from "./components/TimelineMode";
import { fetchShare } from "./api/catalogue";
import { History } from "./components/History";
import { Quota } from "./components/Quota";
import { addToHistory, readHistory, type HistoryEntry } from "./lib/history";
import { decodeResult, encodeResult } from "./lib/share";

type View =
  | { kind: "idle"; notice?: string }
  | { kind: "opening" }
  | { kind: "working"; source: Source; progress: ProgressUpdate }
  | { kind: "result"; result: IdentifyResult; shared: boolean }
  | { kind: "problem"; problem: Problem };

interface Props {
  identifyImpl?: typeof identify;
}

const SHARE_PATH = /^\/r\/([A-Za-z0-9_-]{8})\/?$/;
/** `?mode=timeline` opens the timeline of a long video instead of the clip page. */
const TIMELINE = new URLSearchParams(window.location.search).get("mode") === "timeline";

function initialView(): View {
  if (SHARE_PATH.test(window.location.pathname)) return { kind: "opening" };
  const shared = decodeResult(window.location.hash);
  return shared ? { kind: "result", result: shared, shared: true } : { kind: "idle" };
}

/** Put the answer's address in the address bar: its short link, else the #r= fragment. */
function showAddress(result: IdentifyResult | null) {
  const url = new URL(window.location.href);
  url.hash = "";
  url.search = "";
  if (result?.share_url) {
    try {
      url.pathname = new URL(result.share_url).pathname;
    } catch {
      url.pathname = "/";
    }
  } else {
    url.pathname = "/";
    if (result) url.hash = encodeResult(result);
  }
  window.history.replaceState(null, "", url.toString().replace(/#$/, ""));
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
  const [history, setHistory] = useState<HistoryEntry[]>(() => readHistory());
  const [answered, setAnswered] = useState(0);

  const showResult = useCallback((result: IdentifyResult) => {
    showAddress(result);
    setAnnouncement("");
    setHistory(addToHistory(result));
    setAnswered((n) => n + 1);
    setView({ kind: "result", result, shared: false });
  }, []);

  // An answer Listen goes on following: kept in the history, the quota refreshed; the
  // page stays on Listen.
  const followAnswer = useCallback((result: IdentifyResult) => {
    setHistory(addToHistory(result));
    setAnswered((n) => n + 1);
  }, []);

  const start = useCallback(
    (source: Source) => {
      if (TIMELINE) return; // the timeline view takes drops and pastes itself
      job.current?.abort();
      const controller = new AbortController();
      job.current = controller;
      showAddress(null);
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
          showResult(result);
        },
        (err: unknown) => {
          if (controller.signal.aborted) return;
          job.current = null;
          setAnnouncement("");
          setAnswered((n) => n + 1);
          setView({ kind: "problem", problem: err instanceof Problem ? err : new Problem("unknown") });
        },
      );
    },
    [identifyImpl, showResult],
  );

  const cancel = useCallback(() => {
    job.current?.abort();
    job.current = null;
    setAnnouncement("Cancelled.");
    setView({ kind: "idle", notice: "Cancelled. The server stopped working on it." });
  }, []);

  const reset = useCallback(() => {
    showAddress(null);
    setView({ kind: "idle" });
  }, []);

  // A short link (/r/<id>) opened: fetch the answer it keeps.
  useEffect(() => {
    if (view.kind !== "opening") return;
    const id = SHARE_PATH.exec(window.location.pathname)?.[1] ?? "";
    const abort = new AbortController();
    fetchShare(id, abort.signal).then((result) => {
      if (abort.signal.aborted) return;
      setView(
        result
          ? { kind: "result", result, shared: true }
          : { kind: "idle", notice: "That shared answer has expired or does not exist. Identify the clip again." },
      );
    });
    return () => abort.abort();
  }, [view.kind]);

  const showProblem = useCallback((problem: Problem) => setView({ kind: "problem", problem }), []);

  // Back to the picker: put the keyboard focus on it.
  useEffect(() => {
    if (view.kind === "idle" && !firstView.current && !view.notice?.startsWith("That shared")) picker.current?.focus();
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
        <p className="mode-switch">
          {TIMELINE ? <a href="?">Identify a clip</a> : <a href="?mode=timeline">Timeline of a long video</a>}
        </p>
      </header>

      <main id="main">
        {TIMELINE ? (
          <TimelineMode onStatus={setAnnouncement} />
        ) : view.kind === "working" ? (
          <ProgressPanel
            kind={view.source.kind}
            name={view.source.kind === "file" ? view.source.name : view.source.url}
            progress={view.progress}
            onCancel={cancel}
          />
        ) : view.kind === "result" ? (
          <ResultCard result={view.result} shared={view.shared} onAgain={reset} onStatus={setAnnouncement} />
        ) : view.kind === "opening" ? (
          <p className="notice">Opening the shared answer…</p>
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
              onResult={showResult}
              onAnswer={followAnswer}
              onProblem={showProblem}
              onStatus={setAnnouncement}
              link={link}
              onLinkChange={setLink}
            />
            <Quota refresh={answered} />
          </>
        )}
        <p className="visually-hidden" role="status" aria-live="polite" data-testid="live">
          {announcement}
        </p>
      </main>

      {view.kind !== "working" && <History entries={history} onCleared={() => setHistory([])} />}

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
