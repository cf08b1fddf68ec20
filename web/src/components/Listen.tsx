// "Listen": record 5-10 s from the microphone with MediaRecorder, with a level meter,
// then hand the recording over to be identified.

import { useEffect, useRef, useState } from "react";
import { Problem } from "../api/problem";
import { MicIcon } from "./Icons";

export const MIN_S = 5;
export const MAX_S = 10;

interface Session {
  recorder: MediaRecorder;
  stream: MediaStream;
  audio: AudioContext | null;
  timer: number;
  send: boolean;
}

interface Props {
  onRecorded: (recording: Blob, name: string) => void;
  onProblem: (problem: Problem) => void;
  /** Told when listening starts and stops (for the page's live region). */
  onStatus?: (text: string) => void;
}

function pickMimeType(): string | undefined {
  const wanted = ["audio/webm;codecs=opus", "audio/webm", "audio/ogg;codecs=opus", "audio/mp4"];
  return wanted.find((t) => typeof MediaRecorder.isTypeSupported === "function" && MediaRecorder.isTypeSupported(t));
}

function extensionOf(mime: string): string {
  if (mime.includes("ogg")) return "ogg";
  if (mime.includes("mp4")) return "m4a";
  return "webm";
}

function problemOfMediaError(err: unknown): Problem {
  const name = err instanceof Error || err instanceof DOMException ? err.name : "";
  if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
    return new Problem("microphone_denied");
  }
  if (name === "NotFoundError" || name === "OverconstrainedError" || name === "NotReadableError") {
    return new Problem("microphone_missing");
  }
  return new Problem("microphone_unsupported");
}

export function Listen({ onRecorded, onProblem, onStatus }: Props) {
  const [phase, setPhase] = useState<"idle" | "asking" | "recording">("idle");
  const [elapsed, setElapsed] = useState(0);
  const [level, setLevel] = useState(0);
  const session = useRef<Session | null>(null);
  const stopButton = useRef<HTMLButtonElement>(null);
  const startButton = useRef<HTMLButtonElement>(null);
  const handlers = useRef({ onRecorded, onProblem, onStatus });
  handlers.current = { onRecorded, onProblem, onStatus };

  function finish(send: boolean) {
    const s = session.current;
    if (!s) return;
    s.send = send;
    window.clearInterval(s.timer);
    if (s.recorder.state !== "inactive") s.recorder.stop();
    else release(s);
  }

  function release(s: Session) {
    s.stream.getTracks().forEach((t) => t.stop());
    s.audio?.close().catch(() => undefined);
    if (session.current === s) session.current = null;
  }

  async function start() {
    const media = typeof navigator !== "undefined" ? navigator.mediaDevices : undefined;
    if (!media?.getUserMedia || typeof MediaRecorder === "undefined") {
      handlers.current.onProblem(new Problem("microphone_unsupported"));
      return;
    }
    setPhase("asking");
    handlers.current.onStatus?.("Asking for the microphone…");
    let stream: MediaStream;
    try {
      stream = await media.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
    } catch (err) {
      setPhase("idle");
      handlers.current.onStatus?.("");
      handlers.current.onProblem(problemOfMediaError(err));
      return;
    }
    const mimeType = pickMimeType();
    const recorder = new MediaRecorder(stream, mimeType ? { mimeType } : undefined);
    const chunks: Blob[] = [];
    let audio: AudioContext | null = null;
    let analyser: AnalyserNode | null = null;
    try {
      audio = new AudioContext();
      analyser = audio.createAnalyser();
      analyser.fftSize = 1024;
      audio.createMediaStreamSource(stream).connect(analyser);
    } catch {
      analyser = null; // no meter, recording still works
    }
    const samples = new Float32Array(1024);
    const started = performance.now();
    const s: Session = { recorder, stream, audio, timer: 0, send: false };
    recorder.ondataavailable = (e) => {
      if (e.data.size > 0) chunks.push(e.data);
    };
    recorder.onstop = () => {
      release(s);
      setPhase("idle");
      setLevel(0);
      if (s.send) {
        const type = recorder.mimeType || mimeType || "audio/webm";
        handlers.current.onRecorded(new Blob(chunks, { type }), `recording.${extensionOf(type)}`);
      } else {
        handlers.current.onStatus?.("Stopped listening.");
      }
    };
    s.timer = window.setInterval(() => {
      const t = (performance.now() - started) / 1000;
      setElapsed(t);
      if (analyser) {
        analyser.getFloatTimeDomainData(samples);
        let sum = 0;
        for (const x of samples) sum += x * x;
        setLevel(Math.min(1, Math.sqrt(sum / samples.length) * 5));
      }
      if (t >= MAX_S) finish(true);
    }, 100);
    session.current = s;
    recorder.start(500);
    setElapsed(0);
    setPhase("recording");
    handlers.current.onStatus?.(`Listening. Hold the phone near the sound; it stops by itself after ${MAX_S} seconds.`);
  }

  useEffect(() => () => finish(false), []);

  useEffect(() => {
    if (phase === "recording") stopButton.current?.focus();
  }, [phase]);

  if (phase !== "recording") {
    return (
      <button
        ref={startButton}
        type="button"
        className="button"
        onClick={start}
        disabled={phase === "asking"}
        aria-describedby="listen-help"
      >
        <MicIcon /> Listen
      </button>
    );
  }
  const ready = elapsed >= MIN_S;
  const shown = Math.min(MAX_S, Math.floor(elapsed));
  return (
    <div className="listening" role="group" aria-label="Listening">
      <p className="listening-time">
        Listening… <strong>{shown} s</strong> of {MAX_S} s
      </p>
      <label className="meter-label">
        <span>Sound level</span>
        <meter min={0} max={1} low={0.05} high={0.9} optimum={0.5} value={level}>
          {Math.round(level * 100)} %
        </meter>
      </label>
      <div className="row">
        <button type="button" className="button primary" onClick={() => finish(true)} disabled={!ready}>
          {ready ? "Identify now" : `Identify now (after ${MIN_S} s)`}
        </button>
        <button ref={stopButton} type="button" className="button" onClick={() => finish(false)}>
          Stop
        </button>
      </div>
    </div>
  );
}
