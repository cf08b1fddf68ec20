// WS /api/v1/listen: a recording streamed while it is made; the server answers as soon as
// it is sure (see citywok/web/routes/listen.py for the messages).

import { Problem, problemFrom } from "./problem";
import type { IdentifyResult } from "./types";

export const LISTEN_PATH = "/api/v1/listen";

export interface ListenHandlers {
  /** Seconds of sound the server has looked at, after each look. */
  onHeard?: (heardS: number) => void;
  onResult: (result: IdentifyResult, heardS: number) => void;
  onProblem: (problem: Problem) => void;
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

export function openListen(handlers: ListenHandlers, WebSocketImpl: typeof WebSocket = WebSocket, url = listenUrl()): ListenStream {
  const ws = new WebSocketImpl(url);
  let finished = false;
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
  ws.onopen = () => ws.send(JSON.stringify({ type: "start", follow: false }));
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
      finish();
      handlers.onResult(msg.answer as IdentifyResult, Number(msg.heard_s ?? 0));
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
