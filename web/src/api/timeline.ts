// POST /api/v1/timeline with `Accept: text/event-stream`: segments arrive as the server
// finds them, with progress; an AbortController cancels (the server stops and frees its
// worker when the connection goes). Shapes: docs/web.md, citywok/timeline.py.

import type { Source } from "./identify";
import { Problem, parseRetryAfter, problemFrom } from "./problem";
import { SseParser } from "./sse";
import type { Candidate } from "./types";

export const TIMELINE_URL = "/api/v1/timeline";

export type SegmentStatus = "match" | "ambiguous" | "unknown";

/** An episode a segment comes from: `offset_s` where the segment starts in it. */
export interface SegmentMatch extends Candidate {
  /** Where the segment ends in the episode, in seconds. */
  end_offset_s: number;
}

export interface TimelineSegment {
  start_s: number;
  end_s: number;
  status: SegmentStatus;
  match: SegmentMatch | null;
  /** For ambiguous segments: every episode that fits all of it. */
  candidates: SegmentMatch[];
}

export interface TimelineResult {
  file?: string | null;
  duration_s: number;
  segments: TimelineSegment[];
  elapsed_ms: number;
}

export type TimelineStage = "sending" | "received" | "downloading" | "decoding" | "reading";

export interface TimelineProgress {
  stage: TimelineStage;
  /** Seconds of the input read so far, and its length when the server knows it. */
  doneS?: number | null;
  totalS?: number | null;
  /** Download or reading progress, 0-100, when known. */
  percent?: number | null;
}

export interface TimelineOptions {
  signal?: AbortSignal;
  onProgress?: (update: TimelineProgress) => void;
  /** Each segment as soon as the server has settled it, in order. */
  onSegment?: (segment: TimelineSegment) => void;
  fetchImpl?: typeof fetch;
}

/** The timeline of a long input; resolves with it, rejects with a Problem (or an AbortError). */
export async function timeline(source: Source, options: TimelineOptions = {}): Promise<TimelineResult> {
  const { signal, onProgress, onSegment, fetchImpl = fetch } = options;
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
    response = await fetchImpl(TIMELINE_URL, { method: "POST", body, headers, signal });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new Problem("unreachable");
  }
  if (!response.ok) throw await problemOf(response);
  const type = response.headers.get("content-type") ?? "";
  if (!type.includes("text/event-stream")) {
    const json = (await response.json().catch(() => null)) as TimelineResult | null;
    if (json && typeof json === "object" && Array.isArray(json.segments)) {
      json.segments.forEach((s) => onSegment?.(s));
      return json;
    }
    throw new Problem("unknown");
  }
  if (!response.body) throw new Problem("unknown");

  let result: TimelineResult | null = null;
  let failure: Problem | null = null;
  const parser = new SseParser(({ event, data }) => {
    if (result || failure) return;
    let payload: Record<string, unknown>;
    try {
      payload = data ? (JSON.parse(data) as Record<string, unknown>) : {};
    } catch {
      return;
    }
    switch (event) {
      case "result":
        result = payload as unknown as TimelineResult;
        break;
      case "error": {
        const err = (payload.error ?? {}) as { code?: string; message?: string };
        failure = problemFrom(Number(payload.status ?? 0), err.code ?? null, err.message ?? null);
        break;
      }
      case "segment": {
        const { index: _index, ...segment } = payload;
        onSegment?.(segment as unknown as TimelineSegment);
        break;
      }
      case "progress":
        onProgress?.({
          stage: "reading",
          doneS: numberOrNull(payload.done_s),
          totalS: numberOrNull(payload.total_s),
          percent: numberOrNull(payload.percent),
        });
        break;
      case "received":
      case "decoding":
        onProgress?.({ stage: event });
        break;
      case "downloading":
        onProgress?.({ stage: "downloading", percent: numberOrNull(payload.percent) });
        break;
      default:
        break; // heartbeats and anything newer
    }
  });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (err) {
        if (signal?.aborted) throw err;
        throw new Problem("unreachable");
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
  throw new Problem("unreachable");
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
    // Not our JSON: the status alone tells.
  }
  return problemFrom(response.status, code, message, retryAfterS);
}
