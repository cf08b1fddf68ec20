// POST /api/v1/timeline with `Accept: text/event-stream` (see ./post.ts for how it goes
// up and comes back): segments arrive as the server finds them, with progress; an
// AbortController cancels (the server stops and frees its worker when the connection
// goes). Shapes: generated from the API's OpenAPI document (./schema.d.ts).

import { numberOrNull, post, type PostOptions, type Source } from "./post";
import type { components } from "./schema";

type Schemas = components["schemas"];

export const TIMELINE_URL = "/api/v1/timeline";

/** An episode a segment comes from: `offset_s` where the segment starts in it. */
export type SegmentMatch = Schemas["SegmentMatchOut"];
export type TimelineSegment = Schemas["SegmentOut"];
export type SegmentStatus = TimelineSegment["status"];
/** The answer (`POST /api/v1/timeline`, the SSE `result`): the shape of `citywok timeline --json`. */
export type TimelineResult = Schemas["TimelineOut"];

export type TimelineStage = "sending" | "received" | "downloading" | "decoding" | "reading";

export interface TimelineProgress {
  stage: TimelineStage;
  /** Seconds of the input read so far, and its length when the server knows it. */
  doneS?: number | null;
  totalS?: number | null;
  /** Download or reading progress, 0-100, when known. */
  percent?: number | null;
}

export interface TimelineOptions extends PostOptions {
  onProgress?: (update: TimelineProgress) => void;
  /** Each segment as soon as the server has settled it, in order. */
  onSegment?: (segment: TimelineSegment) => void;
}

function isResult(json: unknown): json is TimelineResult {
  return typeof json === "object" && json !== null && Array.isArray((json as TimelineResult).segments);
}

/** The timeline of a long input; resolves with it, rejects with a Problem (or an AbortError). */
export async function timeline(source: Source, options: TimelineOptions = {}): Promise<TimelineResult> {
  const { onProgress, onSegment } = options;
  let streamed = false;
  const result = await post(
    {
      url: TIMELINE_URL,
      isResult,
      onSending: (upload) => onProgress?.({ stage: "sending", percent: upload.percent ?? null }),
      onEvent: (event, payload) => {
        switch (event) {
          case "segment": {
            const { index: _index, ...segment } = payload;
            streamed = true;
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
      },
    },
    source,
    options,
  );
  // A plain JSON answer (a proxy that does not stream) comes whole: its segments now.
  if (!streamed) result.segments.forEach((s) => onSegment?.(s));
  return result;
}
