// WS /api/v1/listen: a recording streamed while it is made; the server answers as soon as
// it is sure, and when asked keeps following the episode as it plays (see
// citywok/web/routes/listen.py and citywok/web/following.py for the messages).

import { Problem, problemFrom } from "./problem";
import type { Candidate, IdentifyResult, Status } from "./types";

export const LISTEN_PATH = "/api/v1/listen";

/** What the live tracker says while it follows (times are seconds of sound heard). */
export type LiveEvent =
  | { event: "listening"; at_s: number; heard_s: number }
  | {
      event: "found";
      at_s: number;
      status: Status;
      /** What happened since the last place. */
      change: "first" | "resume" | "seek" | "episode" | "resolved";
      /** `offset_s` is the position in the episode now. */
      match: Candidate;
      /** For an ambiguous place: every episode that fits. */
      candidates: Candidate[];
    }
  | { event: "position"; at_s: number; status: Status; match: Candidate; candidates: Candidate[] }
  | { event: "lost"; at_s: number; since_s: number; reason: "pause" | "mismatch" | "end"; last: Candidate };

/** The server's limits on following (seconds). */
export interface FollowLimits {
  max_s: number;
  idle_s: number;
}

/** Why following ended: the server's reasons, or the connection dropped. */
export type FollowEnd = "stopped" | "ended" | "limit" | "idle" | "disconnected";

export interface ListenHandlers {
  /** Seconds of sound the server has looked at, after each look. */
  onHeard?: (heardS: number) => void;
  /** The answer; `follow` is set when the server goes on following (the socket stays open). */
  onResult: (result: IdentifyResult, heardS: number, follow: FollowLimits | null) => void;
  onProblem: (problem: Problem) => void;
  /** While following: each event of the live tracker. */
  onLive?: (event: LiveEvent) => void;
  /** Following ended (the socket is closed). */
  onFollowEnded?: (reason: FollowEnd, heardS: number) => void;
}

export interface ListenOptions {
  /** Ask the server to keep following after its answer. */
  follow?: boolean;
  WebSocketImpl?: typeof WebSocket;
  url?: string;
}

export interface ListenStream {
  /** Resolves once the server is ready for sound. */
  ready: Promise<void>;
  send: (chunk: Blob) => void;
  /** No more sound: answer with what was heard. */
  stop: () => void;
  /** Hang up without an answer. */
  close: () => void;
}

export function listenUrl(loc: Pick<Location, "protocol" | "host"> = window.location): string {
  return `${loc.protocol === "https:" ? "wss" : "ws"}://${loc.host}${LISTEN_PATH}`;
}

export function openListen(handlers: ListenHandlers, options: ListenOptions = {}): ListenStream {
  const { follow = false, WebSocketImpl = WebSocket, url = listenUrl() } = options;
  const ws = new WebSocketImpl(url);
  let finished = false;
  let following = false;
  let readyResolve: () => void = () => undefined;
  let readyReject: (p: Problem) => void = () => undefined;
  const ready = new Promise<void>((resolve, reject) => {
    readyResolve = resolve;
    readyReject = reject;
  });
  ready.catch(() => undefined);
  const finish = () => {
    finished = true;
    if (ws.readyState === WebSocketImpl.OPEN || ws.readyState === WebSocketImpl.CONNECTING) ws.close();
  };
  ws.onopen = () => ws.send(JSON.stringify({ type: "start", follow }));
  ws.onmessage = (e: MessageEvent) => {
    if (finished || typeof e.data !== "string") return;
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(e.data) as Record<string, unknown>;
    } catch {
      return;
    }
    if (msg.type === "listening") readyResolve();
    else if (msg.type === "heard") handlers.onHeard?.(Number(msg.heard_s ?? 0));
    else if (msg.type === "result" && msg.answer && typeof msg.answer === "object") {
      const limits = msg.follow && typeof msg.follow === "object" ? (msg.follow as FollowLimits) : null;
      following = limits !== null;
      if (!following) finish();
      handlers.onResult(msg.answer as IdentifyResult, Number(msg.heard_s ?? 0), limits);
    } else if (msg.type === "live" && following) {
      handlers.onLive?.(msg as unknown as LiveEvent);
    } else if (msg.type === "follow_ended") {
      finish();
      handlers.onFollowEnded?.(String(msg.reason ?? "ended") as FollowEnd, Number(msg.heard_s ?? 0));
    } else if (msg.type === "error") {
      finish();
      const err = (msg.error ?? {}) as { code?: string; message?: string };
      const retry = typeof msg.retry_after_s === "number" ? msg.retry_after_s : null;
      const problem = problemFrom(Number(msg.status ?? 0), err.code ?? null, err.message ?? null, retry);
      readyReject(problem);
      handlers.onProblem(problem);
    }
  };
  ws.onerror = () => undefined; // onclose follows and tells
  ws.onclose = () => {
    if (finished) return;
    finished = true;
    if (following) {
      handlers.onFollowEnded?.("disconnected", 0);
      return;
    }
    const problem = new Problem("unreachable");
    readyReject(problem);
    handlers.onProblem(problem);
  };
  return {
    ready,
    send: (chunk) => {
      if (!finished && ws.readyState === WebSocketImpl.OPEN && chunk.size > 0) ws.send(chunk);
    },
    stop: () => {
      if (!finished && ws.readyState === WebSocketImpl.OPEN) ws.send(JSON.stringify({ type: "stop" }));
    },
    close: finish,
  };
}
