import { describe, expect, it, vi } from "vitest";
import { identify, type ProgressUpdate } from "./identify";
import { Problem, parseRetryAfter } from "./problem";
import { FakeXhr } from "./test-xhr";

const RESULT = {
  status: "match",
  match: { show: "Demo", season: 1, episode: 2, title: "T", episode_id: "e2", offset_s: 12, confidence: 1, score: 9, speed: 1, pitch_semitones: 0 },
  candidates: [],
  elapsed_ms: 10,
  clip_duration_s: 5,
};

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      chunks.forEach((c) => controller.enqueue(enc.encode(c)));
      controller.close();
    },
  });
}

function sse(chunks: string[]): typeof fetch {
  return vi.fn(async () => new Response(streamOf(chunks), { headers: { "Content-Type": "text/event-stream" } }));
}

const file = { kind: "file" as const, file: new Blob(["x"]), name: "clip.mp4" };

describe("identify", () => {
  it("posts the file asking for events, reports each stage and resolves with the result", async () => {
    const fetchImpl = sse([
      'event: received\r\ndata: {"source": "upload", "bytes": 1}\r\n\r\n',
      "event: decoding\r\ndata: {}\r\n\r\nevent: heartbeat\r\n",
      'data: {"stage": "decoding", "elapsed_s": 5.0}\r\n\r\n: ping\r\n\r\n',
      `event: fingerprinting\r\ndata: {}\r\n\r\nevent: matching\r\ndata: {}\r\n\r\nevent: result\r\ndata: ${JSON.stringify(RESULT)}\r\n\r\n`,
    ]);
    const seen: ProgressUpdate[] = [];
    const result = await identify(file, { fetchImpl, onProgress: (p) => seen.push(p) });
    expect(result.match?.episode_id).toBe("e2");
    expect(seen.map((p) => p.stage)).toEqual(["sending", "received", "decoding", "decoding", "fingerprinting", "matching"]);
    expect(seen[3].elapsedS).toBe(5);
    const [url, init] = (fetchImpl as ReturnType<typeof vi.fn>).mock.calls[0];
    expect(url).toBe("/api/v1/identify");
    expect(init.headers.Accept).toBe("text/event-stream");
    expect((init.body as FormData).get("file")).toBeInstanceOf(Blob);
  });

  it("sends a link as JSON and reports the download percent", async () => {
    const fetchImpl = sse([
      'event: downloading\ndata: {"bytes": 50, "total": 200, "percent": 25.0}\n\n',
      `event: result\ndata: ${JSON.stringify(RESULT)}\n\n`,
    ]);
    const seen: ProgressUpdate[] = [];
    await identify({ kind: "link", url: "https://youtu.be/x" }, { fetchImpl, onProgress: (p) => seen.push(p) });
    expect(seen[1]).toMatchObject({ stage: "downloading", percent: 25, bytes: 50, total: 200 });
    const init = (fetchImpl as ReturnType<typeof vi.fn>).mock.calls[0][1];
    expect(JSON.parse(init.body)).toEqual({ url: "https://youtu.be/x" });
  });

  it("turns an error event into a Problem", async () => {
    const fetchImpl = sse(['event: error\ndata: {"status": 415, "error": {"code": "not_media", "message": "no audio"}}\n\n']);
    const err = await identify(file, { fetchImpl }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Problem);
    expect((err as Problem).kind).toBe("unsupported");
  });

  it("reads the wait from Retry-After on a 429", async () => {
    const fetchImpl = vi.fn(async () =>
      Response.json({ error: { code: "rate_limited", message: "slow down" } }, { status: 429, headers: { "Retry-After": "120" } }),
    );
    const err = (await identify(file, { fetchImpl }).catch((e: unknown) => e)) as Problem;
    expect(err.kind).toBe("rate_limited");
    expect(err.options.retryAfterS).toBe(120);
  });

  it.each([
    [413, "body_too_large", "too_large"],
    [413, "media_too_long", "too_long"],
    [422, "url_refused", "link_refused"],
    [502, "download_failed", "download_failed"],
    [503, "index_not_found", "unavailable"],
    [500, "internal_error", "unknown"],
  ])("maps %i %s to %s", async (status, code, kind) => {
    const fetchImpl = vi.fn(async () => Response.json({ error: { code, message: "m" } }, { status }));
    const err = (await identify(file, { fetchImpl }).catch((e: unknown) => e)) as Problem;
    expect(err.kind).toBe(kind);
  });

  it("explains a proxy's HTML error page by its status", async () => {
    const fetchImpl = vi.fn(async () => new Response("<html>Bad gateway</html>", { status: 502 }));
    expect(((await identify(file, { fetchImpl }).catch((e: unknown) => e)) as Problem).kind).toBe("unreachable");
  });

  it("says the server is unreachable when fetch fails or the stream ends early", async () => {
    const down = vi.fn(async () => {
      throw new TypeError("Failed to fetch");
    });
    expect(((await identify(file, { fetchImpl: down }).catch((e: unknown) => e)) as Problem).kind).toBe("unreachable");
    const cut = sse(["event: decoding\ndata: {}\n\n"]);
    expect(((await identify(file, { fetchImpl: cut }).catch((e: unknown) => e)) as Problem).kind).toBe("unreachable");
  });

  it("passes the abort through instead of a Problem", async () => {
    const controller = new AbortController();
    const fetchImpl = vi.fn(async (_url: RequestInfo | URL, init?: RequestInit) => {
      expect(init?.signal).toBe(controller.signal);
      controller.abort();
      throw new DOMException("aborted", "AbortError");
    });
    const err = await identify(file, { fetchImpl, signal: controller.signal }).catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(Problem);
    expect((err as DOMException).name).toBe("AbortError");
  });
});

describe("parseRetryAfter", () => {
  it("reads seconds and HTTP dates", () => {
    expect(parseRetryAfter("30")).toBe(30);
    expect(parseRetryAfter(new Date(61_000).toUTCString(), 1_000)).toBe(60);
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter("soon")).toBeNull();
  });
});

describe("identify (upload with XMLHttpRequest)", () => {
  it("reports the upload percent, then reads the answer as it streams in", async () => {
    const seen: ProgressUpdate[] = [];
    const done = identify(file, { xhrImpl: FakeXhr as unknown as typeof XMLHttpRequest, onProgress: (p) => seen.push(p) });
    const xhr = FakeXhr.last!;
    expect(xhr.opened).toEqual(["POST", "/api/v1/identify"]);
    expect(xhr.headers.Accept).toBe("text/event-stream");
    expect(xhr.sent).toBeInstanceOf(FormData);
    xhr.upload.onprogress?.({ lengthComputable: true, loaded: 25, total: 100 });
    xhr.upload.onprogress?.({ lengthComputable: true, loaded: 80, total: 100 });
    xhr.status = 200;
    xhr.responseText = 'event: received\ndata: {"bytes": 100}\n\nevent: decoding\ndata: {}\n\n';
    xhr.onprogress?.();
    xhr.responseText += `event: result\ndata: ${JSON.stringify(RESULT)}\n\n`;
    xhr.onprogress?.();
    const result = await done;
    expect(result.match?.episode_id).toBe("e2");
    expect(seen.filter((p) => p.stage === "sending").map((p) => p.percent)).toEqual([0, 25, 80]);
    expect(seen.map((p) => p.stage)).toContain("decoding");
  });

  it("turns an error status into a Problem, with Retry-After", async () => {
    const done = identify(file, { xhrImpl: FakeXhr as unknown as typeof XMLHttpRequest });
    const xhr = FakeXhr.last!;
    xhr.status = 413;
    xhr.responseText = JSON.stringify({ error: { code: "body_too_large", message: "the file is larger than the 50 MB this server accepts" } });
    xhr.onload?.();
    await expect(done).rejects.toMatchObject({ kind: "too_large" });
  });

  it("aborts the request when cancelled", async () => {
    const controller = new AbortController();
    const done = identify(file, { xhrImpl: FakeXhr as unknown as typeof XMLHttpRequest, signal: controller.signal });
    controller.abort();
    await expect(done).rejects.toMatchObject({ name: "AbortError" });
    expect(FakeXhr.last!.aborted).toBe(true);
  });
});
