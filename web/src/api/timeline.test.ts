import { describe, expect, it, vi } from "vitest";
import { Problem } from "./problem";
import { FakeXhr } from "./test-xhr";
import { timeline, type TimelineProgress, type TimelineSegment } from "./timeline";

const MATCH = {
  show: "Demo", season: 1, episode: 2, title: "T", episode_id: "e2", offset_s: 12, confidence: 1,
  score: 9, speed: 1, pitch_semitones: 0, end_offset_s: 21,
};
const SEGMENTS = [
  { start_s: 0, end_s: 9, status: "match", match: MATCH, candidates: [] },
  { start_s: 9, end_s: 15, status: "unknown", match: null, candidates: [] },
];
const RESULT = { file: "mix.mp4", duration_s: 15, segments: SEGMENTS, elapsed_ms: 80 };

function sse(chunks: string[]): typeof fetch {
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      chunks.forEach((c) => controller.enqueue(enc.encode(c)));
      controller.close();
    },
  });
  return vi.fn(async () => new Response(body, { headers: { "Content-Type": "text/event-stream" } }));
}

const file = { kind: "file" as const, file: new Blob(["x"]), name: "mix.mp4" };

describe("timeline", () => {
  it("hands over segments as they come, with progress, and resolves with the whole", async () => {
    const fetchImpl = sse([
      'event: received\ndata: {"source": "upload", "bytes": 1}\n\nevent: decoding\ndata: {}\n\n',
      'event: progress\ndata: {"done_s": 4.0, "total_s": 15.0, "percent": 26}\n\n',
      `event: segment\ndata: ${JSON.stringify({ index: 0, ...SEGMENTS[0] })}\n\n`,
      'event: heartbeat\ndata: {"stage": "timeline", "elapsed_s": 5}\n\n',
      `event: segment\ndata: ${JSON.stringify({ index: 1, ...SEGMENTS[1] })}\n\n`,
      `event: result\ndata: ${JSON.stringify(RESULT)}\n\n`,
    ]);
    const seen: TimelineProgress[] = [];
    const segments: TimelineSegment[] = [];
    const result = await timeline(file, { fetchImpl, onProgress: (p) => seen.push(p), onSegment: (s) => segments.push(s) });
    expect(segments).toEqual(SEGMENTS);
    expect(result.segments).toEqual(SEGMENTS);
    expect(seen.map((p) => p.stage)).toEqual(["sending", "received", "decoding", "reading"]);
    expect(seen[3]).toMatchObject({ doneS: 4, totalS: 15, percent: 26 });
    const [url, init] = (fetchImpl as ReturnType<typeof vi.fn>).mock.calls[0];
    expect(url).toBe("/api/v1/timeline");
    expect((init.body as FormData).get("file")).toBeInstanceOf(Blob);
  });

  it("turns an error event or an error status into a Problem", async () => {
    const failing = sse(['event: error\ndata: {"status": 413, "error": {"code": "media_too_long", "message": "too long"}}\n\n']);
    await expect(timeline(file, { fetchImpl: failing })).rejects.toMatchObject({ kind: "too_long" });
    const refused = vi.fn(async () =>
      new Response(JSON.stringify({ error: { code: "url_refused", message: "no" } }), { status: 422 }),
    );
    const err = await timeline({ kind: "link", url: "https://x.example/v" }, { fetchImpl: refused }).catch((e) => e);
    expect(err).toBeInstanceOf(Problem);
    expect(err.kind).toBe("link_refused");
  });

  it("uploads a file with XMLHttpRequest and says how far it got", async () => {
    const seen: TimelineProgress[] = [];
    const segments: TimelineSegment[] = [];
    const done = timeline(file, {
      xhrImpl: FakeXhr as unknown as typeof XMLHttpRequest,
      onProgress: (p) => seen.push(p),
      onSegment: (s) => segments.push(s),
    });
    const xhr = FakeXhr.last!;
    expect(xhr.opened).toEqual(["POST", "/api/v1/timeline"]);
    xhr.upload.onprogress?.({ lengthComputable: true, loaded: 40, total: 100 });
    xhr.status = 200;
    xhr.responseText = `event: segment\ndata: ${JSON.stringify({ index: 0, ...SEGMENTS[0] })}\n\n`;
    xhr.onprogress?.();
    xhr.responseText += `event: result\ndata: ${JSON.stringify(RESULT)}\n\n`;
    xhr.onprogress?.();
    expect((await done).duration_s).toBe(15);
    expect(seen.filter((p) => p.stage === "sending").map((p) => p.percent)).toEqual([0, 40]);
    expect(segments).toEqual([SEGMENTS[0]]);
  });
});
