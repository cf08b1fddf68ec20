// "Listen": the page's main action. One big button; the microphone's sound streams to the
// server while it records (MediaRecorder chunks over a WebSocket), and the answer comes as
// soon as the server is sure, often within a few seconds. The server stops by itself after
// its limit and answers "not found" then; Stop answers with what was heard so far.
// After an answer Listen keeps listening and follows the episode as it plays (Following),
// until Stop or the server's limit.

import { useEffect, useRef, useState } from "react";
import { openListen, type FollowLimits, type ListenStream } from "../api/listen";
import { Problem } from "../api/problem";
import type { IdentifyResult } from "../api/types";
import { applyLive, changeSentence, endSentence, episodeName, startFollowing, type FollowState } from "../lib/follow";
import { timestamp } from "../lib/format";
import { Following } from "./Following";
import { MicIcon } from "./Icons";
import { SoundLevel } from "./SoundLevel";

/** How often the recorder hands over a chunk (ms): small, so the server hears early. */
export const CHUNK_MS = 250;
/** Opus at 32 kb/s keeps all a fingerprint needs; half an hour of following sends 7 MB. */
export const AUDIO_BITS_PER_S = 32_000;
/** Give up when the server has not answered this long after the last sound (ms). */
const ANSWER_TIMEOUT_MS = 20_000;

interface Session {
  recorder: MediaRecorder | null;
  stream: MediaStream | null;
  audio: AudioContext | null;
  server: ListenStream;
  timer: number;
  over: boolean;
  /** Following after the answer (no answer timeout then). */
  following: boolean;
  /** "Stop and answer" was pressed: the answer is final, whatever the server offers. */
  stopping: boolean;
  limits: FollowLimits | null;
}

interface Props {
  onResult: (result: IdentifyResult) => void;
  /** An answer that is being followed (it is not handed over as a result). */
  onAnswer?: (result: IdentifyResult) => void;
  onProblem: (problem: Problem) => void;
  /** Told when listening starts and stops (for the page's live region). */
  onStatus?: (text: string) => void;
  /** For tests: the WebSocket class. */
  webSocketImpl?: typeof WebSocket;
}

function pickMimeType(): string | undefined {
  const wanted = ["audio/webm;codecs=opus", "audio/webm", "audio/ogg;codecs=opus", "audio/mp4"];
  return wanted.find((t) => typeof MediaRecorder.isTypeSupported === "function" && MediaRecorder.isTypeSupported(t));
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

/** Browsers give the microphone only to secure pages: HTTPS, or this machine. */
export function needsHttps(): boolean {
  return typeof window !== "undefined" && window.isSecureContext === false;
}

export function Listen({ onResult, onAnswer, onProblem, onStatus, webSocketImpl }: Props) {
  const [phase, setPhase] = useState<"idle" | "asking" | "listening" | "finishing" | "following">("idle");
  const [elapsed, setElapsed] = useState(0);
  const [heard, setHeard] = useState(0);
  const [level, setLevel] = useState(0);
  const [follow, setFollowState] = useState<FollowState | null>(null);
  /** Why the last following ended (shown under the button). */
  const [notice, setNotice] = useState<string | null>(null);
  const followed = useRef<FollowState | null>(null);
  const session = useRef<Session | null>(null);
  const stopButton = useRef<HTMLButtonElement>(null);
  const listenButton = useRef<HTMLButtonElement>(null);
  const focusListen = useRef(false);
  const handlers = useRef({ onResult, onAnswer, onProblem, onStatus });
  handlers.current = { onResult, onAnswer, onProblem, onStatus };

  function setFollow(next: FollowState | null) {
    followed.current = next;
    setFollowState(next);
  }
  const insecure = needsHttps();

  /** Stop recording and let go of the microphone (the server may still answer). */
  function stopRecording(s: Session) {
    window.clearInterval(s.timer);
    if (s.recorder && s.recorder.state !== "inactive") {
      try {
        s.recorder.stop();
      } catch {
        // already stopped
      }
    }
    s.stream?.getTracks().forEach((t) => t.stop());
    s.audio?.close().catch(() => undefined);
    s.audio = null;
  }

  function end(s: Session, then: () => void) {
    if (s.over) return;
    s.over = true;
    stopRecording(s);
    s.server.close();
    if (session.current === s) session.current = null;
    setPhase("idle");
    setLevel(0);
    setFollow(null);
    then();
  }

  /** Following ended: back to the button, saying why and where it was. */
  function endFollowing(s: Session, text: string) {
    end(s, () => {
      setNotice(text);
      focusListen.current = true;
      handlers.current.onStatus?.(text);
    });
  }

  async function start() {
    const media = typeof navigator !== "undefined" ? navigator.mediaDevices : undefined;
    if (!media?.getUserMedia || typeof MediaRecorder === "undefined" || typeof WebSocket === "undefined") {
      handlers.current.onProblem(new Problem("microphone_unsupported"));
      return;
    }
    setPhase("asking");
    setHeard(0);
    setNotice(null);
    handlers.current.onStatus?.("Asking for the microphone…");
    let s: Session | null = null;
    const server = openListen(
      {
        onHeard: (seconds) => setHeard(seconds),
        onResult: (result, heardS, limits) => {
          if (!s) return;
          const state = limits && !s.stopping ? startFollowing(result, heardS) : null;
          if (!state) {
            end(s, () => handlers.current.onResult(result));
            return;
          }
          s.following = true;
          s.limits = limits;
          setFollow(state);
          setPhase("following");
          handlers.current.onAnswer?.(result);
          handlers.current.onStatus?.(
            `Found it: ${state.place.show} ${episodeName(state.place)}, at ${timestamp(state.place.offset_s)}. ` +
              "Following it as it plays; press Stop to end.",
          );
        },
        onLive: (event) => {
          const now = followed.current;
          if (!now) return;
          setFollow(applyLive(now, event));
          const said = changeSentence(event);
          if (said) handlers.current.onStatus?.(said);
        },
        onFollowEnded: (reason) => {
          if (s) endFollowing(s, endSentence(reason, followed.current, s.limits));
        },
        onProblem: (problem) => {
          if (s) end(s, () => handlers.current.onProblem(problem));
          else handlers.current.onProblem(problem);
        },
      },
      { follow: true, WebSocketImpl: webSocketImpl },
    );
    s = { recorder: null, stream: null, audio: null, server, timer: 0, over: false, following: false, stopping: false, limits: null };
    session.current = s;
    let stream: MediaStream;
    try {
      stream = await media.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
    } catch (err) {
      end(s, () => handlers.current.onProblem(problemOfMediaError(err)));
      handlers.current.onStatus?.("");
      return;
    }
    if (s.over) {
      stream.getTracks().forEach((t) => t.stop());
      return;
    }
    s.stream = stream;
    try {
      await server.ready;
    } catch {
      return; // the server said why (onProblem)
    }
    if (s.over) return;
    const mimeType = pickMimeType();
    const recorder = new MediaRecorder(stream, { ...(mimeType ? { mimeType } : {}), audioBitsPerSecond: AUDIO_BITS_PER_S });
    s.recorder = recorder;
    let analyser: AnalyserNode | null = null;
    try {
      s.audio = new AudioContext();
      analyser = s.audio.createAnalyser();
      analyser.fftSize = 1024;
      s.audio.createMediaStreamSource(stream).connect(analyser);
    } catch {
      analyser = null; // no meter, listening still works
    }
    const samples = new Float32Array(1024);
    const started = performance.now();
    recorder.ondataavailable = (e) => server.send(e.data);
    const session_ = s;
    s.timer = window.setInterval(() => {
      const t = (performance.now() - started) / 1000;
      setElapsed(t);
      if (analyser) {
        analyser.getFloatTimeDomainData(samples);
        let sum = 0;
        for (const x of samples) sum += x * x;
        setLevel(Math.min(1, Math.sqrt(sum / samples.length) * 5));
      }
      if (!session_.following && t * 1000 > ANSWER_TIMEOUT_MS * 3) {
        end(session_, () => handlers.current.onProblem(new Problem("unreachable")));
      }
    }, 100);
    recorder.start(CHUNK_MS);
    setElapsed(0);
    setPhase("listening");
    handlers.current.onStatus?.("Listening. Hold the phone near the sound; the answer comes as soon as it is clear.");
  }

  function stop() {
    const s = session.current;
    if (!s) return;
    s.stopping = true;
    // The recorder's last chunk comes with its stop; ask for the answer after it.
    if (s.recorder && s.recorder.state === "recording") s.recorder.onstop = () => s.server.stop();
    else s.server.stop();
    stopRecording(s);
    setPhase("finishing");
    handlers.current.onStatus?.("Looking up what was heard…");
    window.setTimeout(() => end(s, () => handlers.current.onProblem(new Problem("unreachable"))), ANSWER_TIMEOUT_MS);
  }

  function stopFollowing() {
    const s = session.current;
    if (!s) return;
    if (s.recorder) s.recorder.ondataavailable = null; // nothing after "stop"
    s.server.stop();
    endFollowing(s, endSentence("stopped", followed.current, s.limits));
  }

  function cancel() {
    const s = session.current;
    if (s) end(s, () => handlers.current.onStatus?.("Stopped listening."));
  }

  useEffect(
    () => () => {
      const s = session.current;
      if (s) {
        s.over = true;
        stopRecording(s);
        s.server.close();
      }
    },
    [],
  );

  useEffect(() => {
    if (phase === "listening" || phase === "following") stopButton.current?.focus();
    if (phase === "idle" && focusListen.current) {
      focusListen.current = false;
      listenButton.current?.focus();
    }
  }, [phase]);

  if (phase === "idle" || phase === "asking") {
    return (
      <div className="listen-start">
        <button
          ref={listenButton}
          type="button"
          className="listen-button"
          onClick={start}
          disabled={phase === "asking" || insecure}
          aria-describedby="listen-help"
        >
          <MicIcon size={40} />
          <span>Listen</span>
        </button>
        {insecure ? (
          <p id="listen-help" className="hint warn" data-testid="needs-https">
            The microphone works only on a secure page. Open CityWok over <strong>https://</strong> (its operator can
            put it behind a TLS proxy or start it with a certificate), or drop a file instead.
          </p>
        ) : (
          <p id="listen-help" className="hint">
            Play the scene near your phone or computer: the answer comes as soon as it is clear, then it follows the
            episode as it plays.
          </p>
        )}
        {notice && (
          <p className="notice" data-testid="follow-notice">
            {notice}
          </p>
        )}
      </div>
    );
  }
  if (phase === "following" && follow) {
    return <Following ref={stopButton} state={follow} level={level} onStop={stopFollowing} />;
  }
  const seconds = Math.floor(elapsed);
  return (
    <div className="listening" role="group" aria-label="Listening">
      <p className="listening-time">
        {phase === "finishing" ? "Looking up what was heard…" : "Listening…"} <strong>{seconds} s</strong>
        {heard > 0 && <span className="hint"> (checked {Math.floor(heard)} s)</span>}
      </p>
      <SoundLevel level={level} />
      <div className="row">
        <button ref={stopButton} type="button" className="button primary" onClick={stop} disabled={phase === "finishing"}>
          Stop and answer
        </button>
        <button type="button" className="button" onClick={cancel}>
          Cancel
        </button>
      </div>
    </div>
  );
}
