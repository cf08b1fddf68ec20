// POST /api/v1/identify with `Accept: text/event-stream` (see ./post.ts for how it goes
// up and comes back): the stages the server reports as progress, then the answer.

import { numberOrNull, post, type PostOptions, type Source } from "./post";
import type { IdentifyResult } from "./types";

export type { Source } from "./post";

export const IDENTIFY_URL = "/api/v1/identify";

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
  /** While the server's queue holds the clip: its place (1 is next) and the wait expected. */
  queue?: { position: number; expectedWaitS: number } | null;
}

export interface IdentifyOptions extends PostOptions {
  onProgress?: (update: ProgressUpdate) => void;
}

const STAGES = new Set(["received", "downloading", "decoding", "fingerprinting", "matching"]);

function isResult(json: unknown): json is IdentifyResult {
  return typeof json === "object" && json !== null && "status" in json;
}

/** Identify a clip; resolves with the answer, rejects with a Problem (or an AbortError). */
export function identify(source: Source, options: IdentifyOptions = {}): Promise<IdentifyResult> {
  const { onProgress } = options;
  let stage: Stage = "received";
  return post(
    {
      url: IDENTIFY_URL,
      isResult,
      onSending: (upload) => onProgress?.({ stage: "sending", ...upload }),
      onEvent: (event, payload) => {
        if (event === "heartbeat") {
          onProgress?.({ stage, elapsedS: Number(payload.elapsed_s ?? 0) });
        } else if (event === "queued") {
          onProgress?.({
            stage,
            queue: { position: Number(payload.position ?? 1), expectedWaitS: Number(payload.expected_wait_s ?? 0) },
          });
        } else if (STAGES.has(event)) {
          stage = event as Stage;
          onProgress?.({
            stage,
            percent: numberOrNull(payload.percent),
            bytes: numberOrNull(payload.bytes),
            total: numberOrNull(payload.total),
          });
        }
      },
    },
    source,
    options,
  );
}
