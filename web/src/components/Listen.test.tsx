import { act, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Problem } from "../api/problem";
import { Listen } from "./Listen";

afterEach(() => vi.unstubAllGlobals());

function setMedia(getUserMedia: (() => Promise<MediaStream>) | undefined) {
  Object.defineProperty(navigator, "mediaDevices", {
    value: getUserMedia ? { getUserMedia } : undefined,
    configurable: true,
  });
}

/** A WebSocket that records what is sent and lets the test play the server. */
class FakeSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  static last: FakeSocket | null = null;
  readyState = FakeSocket.CONNECTING;
  sent: (string | Blob)[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.last = this;
  }
  send(data: string | Blob) {
    this.sent.push(data);
  }
  close() {
    this.readyState = FakeSocket.CLOSED;
  }
  open() {
    this.readyState = FakeSocket.OPEN;
    this.onopen?.();
    this.say({ type: "listening", max_s: 15 });
  }
  say(msg: object) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
}

class FakeRecorder {
  static isTypeSupported = (t: string) => t === "audio/webm;codecs=opus";
  static last: FakeRecorder | null = null;
  state = "inactive";
  ondataavailable: ((e: { data: Blob }) => void) | null = null;
  onstop: (() => void) | null = null;
  timeslice = 0;
  constructor() {
    FakeRecorder.last = this;
  }
  start(timeslice: number) {
    this.timeslice = timeslice;
    this.state = "recording";
  }
  stop() {
    this.state = "inactive";
    this.ondataavailable?.({ data: new Blob(["last"]) });
    this.onstop?.();
  }
}

const Socket = FakeSocket as unknown as typeof WebSocket;

describe("Listen", () => {
  it("reports a refused microphone as a Problem", async () => {
    vi.stubGlobal("MediaRecorder", class {});
    setMedia(() => Promise.reject(new DOMException("denied", "NotAllowedError")));
    const onProblem = vi.fn();
    render(<Listen onResult={vi.fn()} onProblem={onProblem} webSocketImpl={Socket} />);
    await act(async () => fireEvent.click(screen.getByRole("button", { name: /Listen/ })));
    expect((onProblem.mock.calls[0][0] as Problem).kind).toBe("microphone_denied");
    expect(screen.getByRole("button", { name: /Listen/ })).toBeEnabled();
  });

  it("reports a missing microphone", async () => {
    vi.stubGlobal("MediaRecorder", class {});
    setMedia(() => Promise.reject(new DOMException("none", "NotFoundError")));
    const onProblem = vi.fn();
    render(<Listen onResult={vi.fn()} onProblem={onProblem} webSocketImpl={Socket} />);
    await act(async () => fireEvent.click(screen.getByRole("button", { name: /Listen/ })));
    expect((onProblem.mock.calls[0][0] as Problem).kind).toBe("microphone_missing");
  });

  it("says when the browser cannot record at all", async () => {
    setMedia(undefined);
    const onProblem = vi.fn();
    render(<Listen onResult={vi.fn()} onProblem={onProblem} webSocketImpl={Socket} />);
    await act(async () => fireEvent.click(screen.getByRole("button", { name: /Listen/ })));
    expect((onProblem.mock.calls[0][0] as Problem).kind).toBe("microphone_unsupported");
  });

  it("says that the microphone needs HTTPS on a page that is not secure", () => {
    vi.stubGlobal("isSecureContext", false);
    render(<Listen onResult={vi.fn()} onProblem={vi.fn()} webSocketImpl={Socket} />);
    expect(screen.getByRole("button", { name: /Listen/ })).toBeDisabled();
    expect(screen.getByTestId("needs-https")).toHaveTextContent("https://");
  });

  it("streams chunks while it records and hands over the server's answer at once", async () => {
    const stopTrack = vi.fn();
    setMedia(() => Promise.resolve({ getTracks: () => [{ stop: stopTrack }] } as unknown as MediaStream));
    vi.stubGlobal("MediaRecorder", FakeRecorder);
    vi.stubGlobal("AudioContext", undefined);
    const onResult = vi.fn();
    render(<Listen onResult={onResult} onProblem={vi.fn()} webSocketImpl={Socket} />);
    const clicked = act(async () => fireEvent.click(screen.getByRole("button", { name: /Listen/ })));
    await act(async () => FakeSocket.last!.open());
    await clicked;
    const ws = FakeSocket.last!;
    expect(ws.url).toMatch(/^ws:\/\/.*\/api\/v1\/listen$/);
    expect(JSON.parse(ws.sent[0] as string)).toEqual({ type: "start", follow: false });
    expect(screen.getByText(/Listening…/)).toBeInTheDocument();
    expect(screen.getByRole("meter", { name: "Sound level" })).toBeInTheDocument();
    expect(FakeRecorder.last!.timeslice).toBeLessThanOrEqual(500);
    act(() => FakeRecorder.last!.ondataavailable?.({ data: new Blob(["chunk-1"]) }));
    act(() => FakeRecorder.last!.ondataavailable?.({ data: new Blob(["chunk-2"]) }));
    expect(ws.sent.filter((x) => x instanceof Blob)).toHaveLength(2);
    act(() => ws.say({ type: "heard", heard_s: 2.1, status: "no_match" }));
    expect(screen.getByText(/checked 2 s/)).toBeInTheDocument();
    const answer = { status: "match", match: null, candidates: [], elapsed_ms: 1, clip_duration_s: 3 };
    act(() => ws.say({ type: "result", heard_s: 3.1, answer }));
    expect(onResult).toHaveBeenCalledWith(answer);
    expect(stopTrack).toHaveBeenCalled();
    expect(ws.readyState).toBe(FakeSocket.CLOSED);
  });

  it("asks for the answer after the last chunk when stopped, and passes on a refusal", async () => {
    setMedia(() => Promise.resolve({ getTracks: () => [{ stop: vi.fn() }] } as unknown as MediaStream));
    vi.stubGlobal("MediaRecorder", FakeRecorder);
    vi.stubGlobal("AudioContext", undefined);
    const onProblem = vi.fn();
    render(<Listen onResult={vi.fn()} onProblem={onProblem} webSocketImpl={Socket} />);
    const clicked = act(async () => fireEvent.click(screen.getByRole("button", { name: /Listen/ })));
    await act(async () => FakeSocket.last!.open());
    await clicked;
    const ws = FakeSocket.last!;
    act(() => fireEvent.click(screen.getByRole("button", { name: "Stop and answer" })));
    const last = ws.sent.slice(-2);
    expect(last[0]).toBeInstanceOf(Blob);
    expect(JSON.parse(last[1] as string)).toEqual({ type: "stop" });
    act(() => ws.say({ type: "error", status: 429, error: { code: "rate_limited", message: "too many" }, retry_after_s: 60 }));
    const problem = onProblem.mock.calls[0][0] as Problem;
    expect(problem.kind).toBe("rate_limited");
    expect(problem.options.retryAfterS).toBe(60);
  });
});
