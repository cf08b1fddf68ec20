// POST /api/v1/identify with `Accept: text/event-stream`. A file goes up with
// XMLHttpRequest, the one browser API that reports upload progress (its response is read
// as it streams in); a link with fetch. An AbortController cancels either (the server
// stops the work when the connection goes).

import { Problem, parseRetryAfter, problemFrom } from "./problem";
import { SseParser } from "./sse";
import type { IdentifyResult } from "./types";

export const IDENTIFY_URL = "/api/v1/identify";

export type Source =
  | { kind: "file"; file: Blob; name: string }
  | { kind: "link"; url: string };

/** The stages the server reports, in order. */
export type Stage = "sending" | "received" | "downloading" | "decoding" | "fingerprinting" | "matching";

export interface ProgressUpdate {
  stage: Stage;
  /** Upload progress (stage "sending"), or download progress when the server knows the size. */
  percent?: number | null;
  bytes?: number | null;
  total?: number | null;
  /** Seconds the current stage has run (from heartbeats). */
  elapsedS?: number;
}

export interface IdentifyOptions {
  signal?: AbortSignal;
  onProgress?: (update: ProgressUpdate) => void;
  fetchImpl?: typeof fetch;
  /** The XMLHttpRequest class for uploads (tests pass a fake). */
  xhrImpl?: typeof XMLHttpRequest;
}

const STAGES = new Set(["received", "downloading", "decoding", "fingerprinting", "matching"]);

/** Identify a clip; resolves with the answer, rejects with a Problem (or an AbortError). */
export async function identify(source: Source, options: IdentifyOptions = {}): Promise<IdentifyResult> {
  const { signal, onProgress } = options;
  const Xhr = options.xhrImpl ?? (options.fetchImpl ? undefined : globalThis.XMLHttpRequest);
  if (source.kind === "file" && Xhr) return upload(source, Xhr, signal, onProgress);
  const fetchImpl = options.fetchImpl ?? fetch;
  let body: BodyInit;
  const headers: Record<string, string> = { Accept: "text/event-stream" };
  if (source.kind === "file") {
    const form = new FormData();
    form.append("file", source.file, source.name);
    body = form;
  } else {
    body = JSON.stringify({ url: source.url });
    headers["Content-Type"] = "application/json";
  }
  onProgress?.({ stage: "sending" });

  let response: Response;
  try {
    response = await fetchImpl(IDENTIFY_URL, { method: "POST", body, headers, signal });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new Problem("unreachable");
  }
  if (!response.ok) throw await problemOf(response);

  const type = response.headers.get("content-type") ?? "";
  if (!type.includes("text/event-stream")) {
    // A server (or proxy) that answered with plain JSON.
    const json = (await response.json().catch(() => null)) as IdentifyResult | null;
    if (json && typeof json === "object" && "status" in json) return json;
    throw new Problem("unknown");
  }
  if (!response.body) throw new Problem("unknown");
  return readStream(response.body, signal, onProgress);
}

/** Turns the event stream into progress calls and, at the end, a result or a Problem. */
class EventReader {
  result: IdentifyResult | null = null;
  failure: Problem | null = null;
  private stage: Stage = "received";
  private parser: SseParser;

  constructor(onProgress: IdentifyOptions["onProgress"]) {
    this.parser = new SseParser(({ event, data }) => {
      if (this.result || this.failure) return;
      let payload: Record<string, unknown> = {};
      try {
        payload = data ? (JSON.parse(data) as Record<string, unknown>) : {};
      } catch {
        return; // not ours; ignore
      }
      if (event === "result") {
        this.result = payload as unknown as IdentifyResult;
      } else if (event === "error") {
        const err = (payload.error ?? {}) as { code?: string; message?: string };
        this.failure = problemFrom(Number(payload.status ?? 0), err.code ?? null, err.message ?? null);
      } else if (event === "heartbeat") {
        onProgress?.({ stage: this.stage, elapsedS: Number(payload.elapsed_s ?? 0) });
      } else if (STAGES.has(event)) {
        this.stage = event as Stage;
        onProgress?.({
          stage: this.stage,
          percent: numberOrNull(payload.percent),
          bytes: numberOrNull(payload.bytes),
          total: numberOrNull(payload.total),
        });
      }
    });
  }

  get done(): boolean {
    return Boolean(this.result || this.failure);
  }

  push(text: string) {
    this.parser.push(text);
  }

  end(): IdentifyResult {
    this.parser.end();
    if (this.failure) throw this.failure;
    if (this.result) return this.result;
    throw new Problem("unreachable", null);
  }
}

function upload(
  source: { file: Blob; name: string },
  Xhr: typeof XMLHttpRequest,
  signal: AbortSignal | undefined,
  onProgress: IdentifyOptions["onProgress"],
): Promise<IdentifyResult> {
  return new Promise((resolve, reject) => {
    const xhr = new Xhr();
    const events = new EventReader(onProgress);
    let seen = 0;
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      fn();
    };
    const onAbort = () => {
      xhr.abort();
      settle(() => reject(new DOMException("aborted", "AbortError")));
    };
    const read = () => {
      const text = xhr.responseText ?? "";
      if (text.length > seen) {
        events.push(text.slice(seen));
        seen = text.length;
      }
      if (events.done) {
        settle(() => {
          try {
            resolve(events.end());
          } catch (err) {
            reject(err);
          }
        });
        xhr.abort();
      }
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort);
    xhr.open("POST", IDENTIFY_URL);
    xhr.setRequestHeader("Accept", "text/event-stream");
    xhr.upload.onprogress = (e: ProgressEvent) => {
      if (e.lengthComputable && e.total > 0) {
        onProgress?.({ stage: "sending", percent: Math.min(100, (100 * e.loaded) / e.total), bytes: e.loaded, total: e.total });
      }
    };
    xhr.onprogress = () => {
      if (xhr.status === 200 && (xhr.getResponseHeader("content-type") ?? "").includes("text/event-stream")) read();
    };
    xhr.onload = () => {
      if (xhr.status !== 200) {
        settle(() => reject(problemOfXhr(xhr)));
        return;
      }
      const type = xhr.getResponseHeader("content-type") ?? "";
      if (!type.includes("text/event-stream")) {
        let json: IdentifyResult | null = null;
        try {
          json = JSON.parse(xhr.responseText) as IdentifyResult;
        } catch {
          json = null;
        }
        settle(() => (json && typeof json === "object" && "status" in json ? resolve(json) : reject(new Problem("unknown"))));
        return;
      }
      read();
      settle(() => {
        try {
          resolve(events.end());
        } catch (err) {
          reject(err);
        }
      });
    };
    xhr.onerror = () => settle(() => reject(new Problem("unreachable")));
    const form = new FormData();
    form.append("file", source.file, source.name);
    onProgress?.({ stage: "sending", percent: 0 });
    xhr.send(form);
  });
}

function problemOfXhr(xhr: XMLHttpRequest): Problem {
  const retryAfterS = parseRetryAfter(xhr.getResponseHeader("retry-after"));
  let code: string | null = null;
  let message: string | null = null;
  try {
    const body = JSON.parse(xhr.responseText) as { error?: { code?: unknown; message?: unknown } };
    if (body && typeof body.error === "object" && body.error) {
      code = typeof body.error.code === "string" ? body.error.code : null;
      message = typeof body.error.message === "string" ? body.error.message : null;
    }
  } catch {
    // Not our JSON (a proxy's page): the status alone tells.
  }
  return problemFrom(xhr.status, code, message, retryAfterS);
}

async function readStream(
  stream: ReadableStream<Uint8Array>,
  signal: AbortSignal | undefined,
  onProgress: IdentifyOptions["onProgress"],
): Promise<IdentifyResult> {
  const events = new EventReader(onProgress);
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (err) {
        if (signal?.aborted) throw err;
        throw new Problem("unreachable", null);
      }
      if (chunk.done) break;
      events.push(decoder.decode(chunk.value, { stream: true }));
      if (events.done) break;
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
  return events.end();
}

function numberOrNull(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

async function problemOf(response: Response): Promise<Problem> {
  const retryAfterS = parseRetryAfter(response.headers.get("retry-after"));
  let code: string | null = null;
  let message: string | null = null;
  try {
    const body = (await response.json()) as { error?: { code?: unknown; message?: unknown } };
    if (body && typeof body.error === "object" && body.error) {
      code = typeof body.error.code === "string" ? body.error.code : null;
      message = typeof body.error.message === "string" ? body.error.message : null;
    }
  } catch {
    // Not our JSON (a proxy's page): the status alone tells.
  }
  return problemFrom(response.status, code, message, retryAfterS);
}
