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

describe("Listen", () => {
  it("reports a refused microphone as a Problem", async () => {
    vi.stubGlobal("MediaRecorder", class {});
    setMedia(() => Promise.reject(new DOMException("denied", "NotAllowedError")));
    const onProblem = vi.fn();
    render(<Listen onRecorded={vi.fn()} onProblem={onProblem} />);
    await act(async () => fireEvent.click(screen.getByRole("button", { name: /Listen/ })));
    expect((onProblem.mock.calls[0][0] as Problem).kind).toBe("microphone_denied");
    expect(screen.getByRole("button", { name: /Listen/ })).toBeEnabled();
  });

  it("reports a missing microphone", async () => {
    vi.stubGlobal("MediaRecorder", class {});
    setMedia(() => Promise.reject(new DOMException("none", "NotFoundError")));
    const onProblem = vi.fn();
    render(<Listen onRecorded={vi.fn()} onProblem={onProblem} />);
    await act(async () => fireEvent.click(screen.getByRole("button", { name: /Listen/ })));
    expect((onProblem.mock.calls[0][0] as Problem).kind).toBe("microphone_missing");
  });

  it("says when the browser cannot record at all", async () => {
    setMedia(undefined);
    const onProblem = vi.fn();
    render(<Listen onRecorded={vi.fn()} onProblem={onProblem} />);
    await act(async () => fireEvent.click(screen.getByRole("button", { name: /Listen/ })));
    expect((onProblem.mock.calls[0][0] as Problem).kind).toBe("microphone_unsupported");
  });

  it("records with a level meter, allows sending after 5 s and stops by itself at 10 s", async () => {
    vi.useFakeTimers();
    const stopTrack = vi.fn();
    const stream = { getTracks: () => [{ stop: stopTrack }] } as unknown as MediaStream;
    setMedia(() => Promise.resolve(stream));
    class FakeRecorder {
      static isTypeSupported = (t: string) => t === "audio/webm;codecs=opus";
      state = "inactive";
      mimeType = "audio/webm;codecs=opus";
      ondataavailable: ((e: { data: Blob }) => void) | null = null;
      onstop: (() => void) | null = null;
      start() {
        this.state = "recording";
      }
      stop() {
        this.state = "inactive";
        this.ondataavailable?.({ data: new Blob(["abc"]) });
        this.onstop?.();
      }
    }
    vi.stubGlobal("MediaRecorder", FakeRecorder);
    vi.stubGlobal("AudioContext", undefined);
    const onRecorded = vi.fn();
    render(<Listen onRecorded={onRecorded} onProblem={vi.fn()} />);
    await act(async () => fireEvent.click(screen.getByRole("button", { name: /Listen/ })));
    expect(screen.getByText(/Listening…/)).toBeInTheDocument();
    expect(screen.getByRole("meter", { name: "Sound level" })).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Stop" })).toHaveFocus();
    expect(screen.getByRole("button", { name: /Identify now/ })).toBeDisabled();
    act(() => vi.advanceTimersByTime(5_200));
    expect(screen.getByRole("button", { name: "Identify now" })).toBeEnabled();
    act(() => vi.advanceTimersByTime(5_000));
    expect(onRecorded).toHaveBeenCalledTimes(1);
    const [blob, name] = onRecorded.mock.calls[0];
    expect(name).toBe("recording.webm");
    expect((blob as Blob).type).toBe("audio/webm;codecs=opus");
    expect(stopTrack).toHaveBeenCalled();
    vi.useRealTimers();
  });
});
