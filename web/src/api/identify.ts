// POST /api/v1/identify with `Accept: text/event-stream`, read with fetch so that a file
// can be sent and an AbortController can cancel (the server stops the work when the
// connection goes).

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
  /** Download progress, when the server knows the size. */
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
}

const STAGES = new Set(["received", "downloading", "decoding", "fingerprinting", "matching"]);

/** Identify a clip; resolves with the answer, rejects with a Problem (or an AbortError). */
export async function identify(source: Source, options: IdentifyOptions = {}): Promise<IdentifyResult> {
  const { signal, onProgress, fetchImpl = fetch } = options;
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

async function readStream(
  stream: ReadableStream<Uint8Array>,
  signal: AbortSignal | undefined,
  onProgress: IdentifyOptions["onProgress"],
): Promise<IdentifyResult> {
  let result: IdentifyResult | null = null;
  let failure: Problem | null = null;
  let stage: Stage = "received";
  const parser = new SseParser(({ event, data }) => {
    if (result || failure) return;
    let payload: Record<string, unknown> = {};
    try {
      payload = data ? (JSON.parse(data) as Record<string, unknown>) : {};
    } catch {
      return; // not ours; ignore
    }
    if (event === "result") {
      result = payload as unknown as IdentifyResult;
    } else if (event === "error") {
      const err = (payload.error ?? {}) as { code?: string; message?: string };
      failure = problemFrom(Number(payload.status ?? 0), err.code ?? null, err.message ?? null);
    } else if (event === "heartbeat") {
      onProgress?.({ stage, elapsedS: Number(payload.elapsed_s ?? 0) });
    } else if (STAGES.has(event)) {
      stage = event as Stage;
      onProgress?.({
        stage,
        percent: numberOrNull(payload.percent),
        bytes: numberOrNull(payload.bytes),
        total: numberOrNull(payload.total),
      });
    }
  });
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
      parser.push(decoder.decode(chunk.value, { stream: true }));
      if (result || failure) break;
    }
  } finally {
    parser.end();
    reader.cancel().catch(() => undefined);
  }
  if (failure) throw failure;
  if (result) return result;
  throw new Problem("unreachable", null);
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
