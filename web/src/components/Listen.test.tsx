import { act, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Problem } from "../api/problem";
import type { Candidate, IdentifyResult } from "../api/types";
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
    expect(JSON.parse(ws.sent[0] as string)).toEqual({ type: "start", follow: true });
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

const place = (episode: number, offset_s: number, extra: Partial<Candidate> = {}): Candidate => ({
  show: "Demo Show", season: 1, episode, title: `Title ${episode}`, episode_id: `demo-show-s01e0${episode}`,
  offset_s, confidence: 1, score: 20, speed: 1, pitch_semitones: 0, episode_duration_s: 1320, ...extra,
});
const ANSWER: IdentifyResult = { status: "match", match: place(2, 600), candidates: [place(2, 600)], elapsed_ms: 80, clip_duration_s: 3 };
const LIMITS = { max_s: 1800, idle_s: 300 };

/** Listen started with a fake microphone and server; returns the socket and the callbacks. */
async function listening() {
  const stopTrack = vi.fn();
  setMedia(() => Promise.resolve({ getTracks: () => [{ stop: stopTrack }] } as unknown as MediaStream));
  vi.stubGlobal("MediaRecorder", FakeRecorder);
  vi.stubGlobal("AudioContext", undefined);
  const cb = { onResult: vi.fn(), onAnswer: vi.fn(), onProblem: vi.fn(), onStatus: vi.fn() };
  render(<Listen {...cb} webSocketImpl={Socket} />);
  const clicked = act(async () => fireEvent.click(screen.getByRole("button", { name: /Listen/ })));
  await act(async () => FakeSocket.last!.open());
  await clicked;
  return { ws: FakeSocket.last!, stopTrack, ...cb };
}

const position = () => screen.getByTestId("follow-position").textContent;
const said = (onStatus: ReturnType<typeof vi.fn>) => onStatus.mock.calls.map((c) => String(c[0]));

describe("Listen, following after the answer", () => {
  it("keeps the position current and says each pause, loss, jump and change of episode", async () => {
    const { ws, stopTrack, onResult, onAnswer, onStatus } = await listening();
    act(() => ws.say({ type: "result", heard_s: 3, answer: ANSWER, follow: LIMITS }));
    // The answer is followed, not handed over: the microphone stays on.
    expect(onResult).not.toHaveBeenCalled();
    expect(onAnswer).toHaveBeenCalledWith(ANSWER);
    expect(stopTrack).not.toHaveBeenCalled();
    expect(screen.getByRole("heading", { name: "Demo Show" })).toBeInTheDocument();
    expect(screen.getByText("S01E02")).toBeInTheDocument();
    expect(screen.getByTestId("follow-phase")).toHaveTextContent("Following live");
    // The answer's offset is where the heard sound began: 3 s later it is at 10:03.
    expect(screen.getByTestId("follow-where")).toHaveTextContent("Now at 10:03 of 22:00");
    expect(screen.getByRole("progressbar", { name: "Where in the episode" })).toHaveAttribute("value", "603");
    expect(screen.getByRole("button", { name: "Stop" })).toHaveFocus();
    expect(said(onStatus).at(-1)).toMatch(/^Found it: Demo Show S01E02 Title 2, at 10:03\. Following it/);

    act(() => ws.say({ type: "live", event: "found", at_s: 3.1, status: "match", change: "first", match: place(2, 603.1), candidates: [] }));
    act(() => ws.say({ type: "live", event: "position", at_s: 7.2, status: "match", match: place(2, 607.2), candidates: [] }));
    expect(position()).toBe("10:07");
    expect(screen.queryByTestId("follow-log")).not.toBeInTheDocument();

    act(() => ws.say({ type: "live", event: "lost", at_s: 12, since_s: 9, reason: "pause", last: place(2, 609) }));
    expect(screen.getByTestId("follow-phase")).toHaveTextContent("Paused");
    expect(screen.getByTestId("follow-where")).toHaveTextContent("Paused at 10:09 of 22:00");
    expect(screen.getByTestId("follow-note")).toHaveTextContent("Waiting for it to come back");
    act(() => ws.say({ type: "live", event: "listening", at_s: 13, heard_s: 4 }));
    expect(screen.getByTestId("follow-phase")).toHaveTextContent("Paused");

    act(() => ws.say({ type: "live", event: "found", at_s: 20, status: "match", change: "resume", match: place(2, 610) }));
    act(() => ws.say({ type: "live", event: "lost", at_s: 25, since_s: 23, reason: "mismatch", last: place(2, 613) }));
    expect(screen.getByTestId("follow-phase")).toHaveTextContent("Lost it");
    expect(screen.getByTestId("follow-where")).toHaveTextContent("Last heard at 10:13 of 22:00");
    act(() => ws.say({ type: "live", event: "found", at_s: 27, status: "match", change: "seek", match: place(2, 905), candidates: [] }));
    expect(position()).toBe("15:05");
    act(() => ws.say({ type: "live", event: "found", at_s: 40, status: "match", change: "episode", match: place(3, 75), candidates: [] }));
    expect(screen.getByText("S01E03")).toBeInTheDocument();
    expect(position()).toBe("01:15");
    const log = screen.getByTestId("follow-log");
    expect(Array.from(log.querySelectorAll("li")).map((li) => li.textContent)).toEqual([
      "Another episode: S01E03 Title 3, at 01:15.",
      "Jumped to 15:05.",
      "Lost it at 10:13: listening for where it went.",
      "Playing again at 10:10.",
      "Paused at 10:09.",
    ]);
    expect(said(onStatus)).toContain("Jumped to 15:05.");
    expect(said(onStatus).filter((t) => t.includes("10:07"))).toEqual([]); // positions are not read out

    act(() => fireEvent.click(screen.getByRole("button", { name: "Stop" })));
    expect(JSON.parse(ws.sent.at(-1) as string)).toEqual({ type: "stop" });
    expect(ws.readyState).toBe(FakeSocket.CLOSED);
    expect(stopTrack).toHaveBeenCalled();
    expect(screen.getByTestId("follow-notice")).toHaveTextContent("Stopped following. Last: Demo Show S01E03 Title 3 at 01:15.");
    expect(screen.getByRole("button", { name: /Listen/ })).toHaveFocus();
    expect(onResult).not.toHaveBeenCalled();
  });

  it("follows an ambiguous answer until it is resolved", async () => {
    const { ws } = await listening();
    const shared = [place(1, 2), place(2, 2), place(3, 2)];
    act(() => ws.say({ type: "result", heard_s: 4, answer: { ...ANSWER, status: "ambiguous", match: shared[0], candidates: shared }, follow: LIMITS }));
    expect(screen.getByTestId("follow-shared")).toHaveTextContent("One of 3 episodes that share this part (S01E01, S01E02, S01E03)");
    expect(position()).toBe("00:06");
    act(() => ws.say({ type: "live", event: "found", at_s: 9, status: "match", change: "resolved", match: place(2, 9), candidates: [] }));
    expect(screen.queryByTestId("follow-shared")).not.toBeInTheDocument();
    expect(screen.getByText("S01E02")).toBeInTheDocument();
    expect(screen.getByTestId("follow-log")).toHaveTextContent("It is S01E02 Title 2.");
  });

  it("says why when the server ends following, or the connection drops", async () => {
    const first = await listening();
    act(() => first.ws.say({ type: "result", heard_s: 3, answer: ANSWER, follow: LIMITS }));
    act(() => first.ws.say({ type: "follow_ended", reason: "limit", heard_s: 1803 }));
    expect(screen.getByTestId("follow-notice")).toHaveTextContent("Stopped following after 30 minutes, the most this server follows.");
    expect(first.stopTrack).toHaveBeenCalled();
    expect(first.onProblem).not.toHaveBeenCalled();

    const clicked = act(async () => fireEvent.click(screen.getByRole("button", { name: /Listen/ })));
    await act(async () => FakeSocket.last!.open());
    await clicked;
    const ws = FakeSocket.last!;
    expect(screen.queryByTestId("follow-notice")).not.toBeInTheDocument();
    act(() => ws.say({ type: "result", heard_s: 3, answer: ANSWER, follow: LIMITS }));
    act(() => ws.onclose?.());
    expect(screen.getByTestId("follow-notice")).toHaveTextContent("The connection to the server was lost");
    expect(first.onProblem).not.toHaveBeenCalled();
  });

  it("hands over the answer when the server does not follow, or Stop and answer was pressed", async () => {
    const { ws, onResult, onAnswer } = await listening();
    act(() => fireEvent.click(screen.getByRole("button", { name: "Stop and answer" })));
    act(() => ws.say({ type: "result", heard_s: 3, answer: ANSWER, follow: LIMITS }));
    expect(onResult).toHaveBeenCalledWith(ANSWER);
    expect(onAnswer).not.toHaveBeenCalled();
    expect(screen.queryByTestId("following")).not.toBeInTheDocument();
  });
});
