// A clip or a link POSTed with `Accept: text/event-stream`, as identify and timeline both
// send it: a file goes up with XMLHttpRequest, the one browser API that reports upload
// progress (its response is read as it streams in); a link with fetch. The event stream
// is read as it comes until a `result` or an `error` event; a server or proxy that
// answers with plain JSON is understood too. An AbortController cancels either (the
// server stops the work when the connection goes); every failure is a Problem.

import { Problem, parseRetryAfter, problemFrom } from "./problem";
import { SseParser } from "./sse";

export type Source =
  | { kind: "file"; file: Blob; name: string }
  | { kind: "link"; url: string };

export interface PostOptions {
  signal?: AbortSignal;
  fetchImpl?: typeof fetch;
  /** The XMLHttpRequest class for uploads (tests pass a fake). */
  xhrImpl?: typeof XMLHttpRequest;
}

/** What one route's answer looks like, and what its other events mean. */
export interface Route<T> {
  url: string;
  /** The request is on its way; upload progress (percent 0-100) while a file goes up. */
  onSending: (upload: { percent?: number; bytes?: number; total?: number }) => void;
  /** Each event before the end (`result` and `error` end the stream). */
  onEvent: (event: string, payload: Record<string, unknown>) => void;
  /** Whether a plain JSON answer is the result. */
  isResult: (json: unknown) => json is T;
}

/** Post `source` to `route`; resolves with the result, rejects with a Problem (or an AbortError). */
export async function post<T>(route: Route<T>, source: Source, options: PostOptions = {}): Promise<T> {
  const { signal } = options;
  const Xhr = options.xhrImpl ?? (options.fetchImpl ? undefined : globalThis.XMLHttpRequest);
  if (source.kind === "file" && Xhr) return upload(route, source, Xhr, signal);
  const fetchImpl = options.fetchImpl ?? fetch;
  let body: BodyInit;
  const headers: Record<string, string> = { Accept: "text/event-stream" };
  if (source.kind === "file") {
    body = formOf(source);
  } else {
    body = JSON.stringify({ url: source.url });
    headers["Content-Type"] = "application/json";
  }
  route.onSending({});

  let response: Response;
  try {
    response = await fetchImpl(route.url, { method: "POST", body, headers, signal });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new Problem("unreachable");
  }
  if (!response.ok) throw await problemOf(response);

  const type = response.headers.get("content-type") ?? "";
  if (!type.includes("text/event-stream")) {
    // A server (or proxy) that answered with plain JSON.
    const json: unknown = await response.json().catch(() => null);
    if (route.isResult(json)) return json;
    throw new Problem("unknown");
  }
  if (!response.body) throw new Problem("unknown");
  return readStream(route, response.body, signal);
}

/** A number the server sent, or null. */
export function numberOrNull(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function formOf(source: { file: Blob; name: string }): FormData {
  const form = new FormData();
  form.append("file", source.file, source.name);
  return form;
}

/** Turns the event stream into the route's calls and, at the end, a result or a Problem. */
class EventReader<T> {
  result: T | null = null;
  failure: Problem | null = null;
  private parser: SseParser;

  constructor(route: Route<T>) {
    this.parser = new SseParser(({ event, data }) => {
      if (this.done) return;
      let payload: Record<string, unknown>;
      try {
        payload = data ? (JSON.parse(data) as Record<string, unknown>) : {};
      } catch {
        return; // not ours; ignore
      }
      if (event === "result") {
        this.result = payload as unknown as T;
      } else if (event === "error") {
        const err = (payload.error ?? {}) as { code?: string; message?: string };
        this.failure = problemFrom(Number(payload.status ?? 0), err.code ?? null, err.message ?? null);
      } else {
        route.onEvent(event, payload);
      }
    });
  }

  get done(): boolean {
    return Boolean(this.result || this.failure);
  }

  push(text: string) {
    this.parser.push(text);
  }

  end(): T {
    this.parser.end();
    if (this.failure) throw this.failure;
    if (this.result) return this.result;
    throw new Problem("unreachable", null);
  }
}

function upload<T>(
  route: Route<T>,
  source: { file: Blob; name: string },
  Xhr: typeof XMLHttpRequest,
  signal: AbortSignal | undefined,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new Xhr();
    const events = new EventReader(route);
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
    xhr.open("POST", route.url);
    xhr.setRequestHeader("Accept", "text/event-stream");
    xhr.upload.onprogress = (e: ProgressEvent) => {
      if (e.lengthComputable && e.total > 0) {
        route.onSending({ percent: Math.min(100, (100 * e.loaded) / e.total), bytes: e.loaded, total: e.total });
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
        let json: unknown = null;
        try {
          json = JSON.parse(xhr.responseText);
        } catch {
          json = null;
        }
        settle(() => (route.isResult(json) ? resolve(json) : reject(new Problem("unknown"))));
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
    route.onSending({ percent: 0 });
    xhr.send(formOf(source));
  });
}

async function readStream<T>(route: Route<T>, stream: ReadableStream<Uint8Array>, signal: AbortSignal | undefined): Promise<T> {
  const events = new EventReader(route);
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

/** The Problem an error answer describes: its `{"error": {code, message}}`, else its status. */
function problemOfBody(status: number, text: string, retryAfter: string | null): Problem {
  let code: string | null = null;
  let message: string | null = null;
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (body && typeof body.error === "object" && body.error) {
      code = typeof body.error.code === "string" ? body.error.code : null;
      message = typeof body.error.message === "string" ? body.error.message : null;
    }
  } catch {
    // Not our JSON (a proxy's page): the status alone tells.
  }
  return problemFrom(status, code, message, parseRetryAfter(retryAfter));
}

async function problemOf(response: Response): Promise<Problem> {
  const text = await response.text().catch(() => "");
  return problemOfBody(response.status, text, response.headers.get("retry-after"));
}

function problemOfXhr(xhr: XMLHttpRequest): Problem {
  return problemOfBody(xhr.status, xhr.responseText ?? "", xhr.getResponseHeader("retry-after"));
}
