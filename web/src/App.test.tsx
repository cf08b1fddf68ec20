import { act, fireEvent, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import type { IdentifyOptions, Source } from "./api/identify";
import { Problem } from "./api/problem";
import type { Candidate, IdentifyResult } from "./api/types";
import { encodeResult } from "./lib/share";

const ep = (episode: number, offset_s: number, confidence: number): Candidate => ({
  show: "Demo Show", season: 1, episode, title: `Title ${episode}`, episode_id: `demo-show-s01e0${episode}`,
  offset_s, confidence, score: 20, speed: 1, pitch_semitones: 0,
});
const MATCH: IdentifyResult = {
  status: "match", match: ep(2, 754.2, 0.97), candidates: [ep(2, 754.2, 0.97), ep(3, 12, 0.05)], elapsed_ms: 90, clip_duration_s: 6,
};
const AMBIGUOUS: IdentifyResult = {
  status: "ambiguous", match: ep(1, 1, 0.33), candidates: [ep(1, 1, 0.33), ep(2, 1, 0.33), ep(3, 1, 0.33)], elapsed_ms: 90, clip_duration_s: 6,
  shared: { kind: "intro", episodes: 3 },
};
const NO_MATCH: IdentifyResult = { status: "no_match", match: null, candidates: [], elapsed_ms: 90, clip_duration_s: 6 };

interface Call {
  source: Source;
  options: IdentifyOptions;
  resolve: (r: IdentifyResult) => void;
  reject: (e: unknown) => void;
}

function fakeIdentify() {
  const calls: Call[] = [];
  const impl = vi.fn(
    (source: Source, options: IdentifyOptions = {}) =>
      new Promise<IdentifyResult>((resolve, reject) => {
        calls.push({ source, options, resolve, reject });
        options.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
      }),
  );
  return { impl, calls };
}

function pickFile(name = "clip.mp4") {
  const input = screen.getByTestId("file-input") as HTMLInputElement;
  fireEvent.change(input, { target: { files: [new File(["x"], name, { type: "video/mp4" })] } });
}

beforeEach(() => {
  window.history.replaceState(null, "", "/");
  window.localStorage.clear();
  vi.stubGlobal(
    "fetch",
    vi.fn(async (url: string) =>
      url.startsWith("/api/v1/stats")
        ? Response.json({ episodes: 3, shows: 1, hours: 0.025, index_bytes: 1, segments: 1, hashes: 1, format_version: 1 })
        : Response.json({ items: [{ episode_id: "e1", show: "Demo Show", season: 1, episode: 1, title: "Pilot", duration_s: 30 }], total: 1, offset: 0, limit: 500 }),
    ),
  );
});
afterEach(() => vi.unstubAllGlobals());

describe("App", () => {
  it("offers the three ways in, with labels, and lists the library", async () => {
    render(<App identifyImpl={fakeIdentify().impl} />);
    expect(screen.getByRole("button", { name: "Choose a file" })).toBeInTheDocument();
    expect(screen.getByLabelText(/paste a link/i)).toHaveAttribute("type", "url");
    expect(screen.getByRole("button", { name: /Listen/ })).toBeInTheDocument();
    await screen.findByText("3 episodes of 1 show, 2 minutes of audio.");
    expect(screen.getByText("Pilot", { exact: false })).toBeInTheDocument();
  });

  it("shows each stage live, then the answer with the timestamp, and a share URL", async () => {
    const { impl, calls } = fakeIdentify();
    render(<App identifyImpl={impl} />);
    pickFile("scene.mp4");
    expect(calls[0].source).toMatchObject({ kind: "file", name: "scene.mp4" });
    expect(screen.getByRole("heading", { name: "Identifying…" })).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Cancel" })).toHaveFocus();
    act(() => calls[0].options.onProgress?.({ stage: "received" }));
    act(() => calls[0].options.onProgress?.({ stage: "fingerprinting" }));
    expect(screen.getByText("Fingerprinting").closest("li")).toHaveAttribute("aria-current", "step");
    expect(screen.getByRole("status")).toHaveTextContent("Fingerprinting…");
    await act(async () => calls[0].resolve(MATCH));
    const heading = screen.getByRole("heading", { name: "Demo Show", level: 2 });
    expect(heading).toHaveFocus();
    expect(screen.getByText("S01E02")).toBeInTheDocument();
    expect(screen.getByTestId("timestamp")).toHaveTextContent("12:34");
    expect(screen.getByText("Very sure")).toBeInTheDocument();
    expect(screen.getByText("(97 % confidence)")).toBeInTheDocument();
    expect(screen.getByText("Other possibilities (1)").closest("details")).not.toHaveAttribute("open");
    expect(window.location.hash).toBe(`#${encodeResult(MATCH)}`);
    expect((screen.getByLabelText("Link to this answer") as HTMLInputElement).value).toContain("#r=");
  });

  it("says where a clip stands while the server's queue holds it", () => {
    const { impl, calls } = fakeIdentify();
    render(<App identifyImpl={impl} />);
    pickFile("scene.mp4");
    act(() => calls[0].options.onProgress?.({ stage: "received" }));
    act(() => calls[0].options.onProgress?.({ stage: "received", queue: { position: 3, expectedWaitS: 7.5 } }));
    expect(screen.getByText(/Waiting for its turn: 3 clips in line \(about 8 seconds\)/)).toBeInTheDocument();
    act(() => calls[0].options.onProgress?.({ stage: "received", queue: { position: 1, expectedWaitS: 0.4 } }));
    expect(screen.getByText(/Next in line/)).toBeInTheDocument();
    act(() => calls[0].options.onProgress?.({ stage: "decoding" }));
    expect(screen.queryByText(/in line/)).not.toBeInTheDocument();
  });

  it("shows the download percent of a link", () => {
    const { impl, calls } = fakeIdentify();
    render(<App identifyImpl={impl} />);
    fireEvent.change(screen.getByLabelText(/paste a link/i), { target: { value: "https://youtu.be/abc" } });
    fireEvent.click(screen.getByRole("button", { name: "Identify link" }));
    expect(calls[0].source).toEqual({ kind: "link", url: "https://youtu.be/abc" });
    act(() => calls[0].options.onProgress?.({ stage: "downloading", percent: 42.4, bytes: 4200, total: 10000 }));
    expect(screen.getByText(/Downloading the video \(42 %\)/)).toBeInTheDocument();
    expect(screen.getByRole("progressbar", { name: "Download progress" })).toHaveAttribute("value", "42.4");
    expect(screen.getByText("4.2 kB of 10 kB")).toBeInTheDocument();
  });

  it("refuses text that is not a link before sending anything", () => {
    const { impl } = fakeIdentify();
    render(<App identifyImpl={impl} />);
    fireEvent.change(screen.getByLabelText(/paste a link/i), { target: { value: "not a link" } });
    fireEvent.click(screen.getByRole("button", { name: "Identify link" }));
    expect(impl).not.toHaveBeenCalled();
    expect(screen.getByText(/starting with https/)).toBeInTheDocument();
    expect(screen.getByLabelText(/paste a link/i)).toHaveAttribute("aria-invalid", "true");
  });

  it("cancels: aborts the request and puts the focus back", async () => {
    const { impl, calls } = fakeIdentify();
    render(<App identifyImpl={impl} />);
    pickFile();
    await userEvent.click(screen.getByRole("button", { name: "Cancel" }));
    expect(calls[0].options.signal?.aborted).toBe(true);
    expect(screen.getByTestId("notice")).toHaveTextContent("Cancelled");
    expect(screen.getByRole("button", { name: "Choose a file" })).toHaveFocus();
  });

  it("starts when a link is pasted anywhere, the link field included", () => {
    const { impl, calls } = fakeIdentify();
    render(<App identifyImpl={impl} />);
    const paste = (target: Element, text: string) => {
      const event = new Event("paste", { bubbles: true, cancelable: true }) as ClipboardEvent;
      Object.defineProperty(event, "clipboardData", { value: { files: [], getData: () => text } });
      act(() => {
        target.dispatchEvent(event);
      });
    };
    paste(document.body, "just words");
    expect(impl).not.toHaveBeenCalled();
    paste(screen.getByLabelText(/paste a link/i), " https://www.tiktok.com/@a/video/1 ");
    expect(calls[0].source).toEqual({ kind: "link", url: "https://www.tiktok.com/@a/video/1" });
  });

  it("starts when a file is dropped anywhere", () => {
    const { impl, calls } = fakeIdentify();
    render(<App identifyImpl={impl} />);
    const file = new File(["x"], "dropped.webm", { type: "video/webm" });
    const dataTransfer = { types: ["Files"], files: [file], dropEffect: "none" };
    fireEvent.dragEnter(window, { dataTransfer });
    expect(screen.getByText("Drop to identify")).toBeInTheDocument();
    fireEvent.drop(window, { dataTransfer });
    expect(calls[0].source).toMatchObject({ kind: "file", name: "dropped.webm" });
    expect(screen.queryByText("Drop to identify")).not.toBeInTheDocument();
  });

  it("lists the episodes of an ambiguous answer and says why", async () => {
    const { impl, calls } = fakeIdentify();
    render(<App identifyImpl={impl} />);
    pickFile();
    await act(async () => calls[0].resolve(AMBIGUOUS));
    expect(screen.getByRole("heading", { name: "It could be any of 3 episodes" })).toHaveFocus();
    expect(screen.getByText(/opening theme, which all 3 episodes share/)).toBeInTheDocument();
    expect(screen.getByRole("heading", { name: "Demo Show, season 1", level: 3 })).toBeInTheDocument();
    const rows = screen.getAllByRole("listitem").filter((li) => li.textContent?.includes("Title"));
    expect(rows).toHaveLength(3);
    // Ambiguous rows carry no per-row percentage (each would read 33 %).
    expect(rows.map((li) => li.textContent).join(" ")).not.toMatch(/%/);
  });

  it("says so when the sound and the pictures name different episodes (issue 17)", async () => {
    const { impl, calls } = fakeIdentify();
    render(<App identifyImpl={impl} />);
    pickFile("screenshot.png");
    const sound: Candidate = { ...ep(2, 600, 0.9), decided_by: "sound" };
    const picture: Candidate = { ...ep(3, 20, 0.95), decided_by: "picture", front_end: "frames" };
    await act(async () =>
      calls[0].resolve({ ...MATCH, status: "ambiguous", match: picture, candidates: [picture, sound], disagreement: { sound, picture } }),
    );
    expect(screen.getByTestId("disagreement")).toHaveTextContent(/the sound names .*Title 2 at 10:00, the pictures name .*Title 3 at 00:20/);
  });

  it("lists every episode of a long ambiguous answer, folding the rest under +N more (issue 8, item 11)", async () => {
    const { impl, calls } = fakeIdentify();
    render(<App identifyImpl={impl} />);
    pickFile();
    const many = Array.from({ length: 12 }, (_, i) => ({ ...ep(i + 1, 1, 0.08), episode_id: `e${i + 1}` }));
    await act(async () => calls[0].resolve({ ...AMBIGUOUS, shared: null, match: many[0], candidates: many }));
    expect(screen.getByRole("heading", { name: "It could be any of 12 episodes" })).toBeInTheDocument();
    expect(screen.getByText(/share this stretch of sound/)).toBeInTheDocument();
    expect(screen.queryByText(/opening theme|music cue/)).toBeNull();
    const rows = () => screen.getAllByRole("listitem").filter((li) => li.textContent?.includes("Title"));
    expect(rows()).toHaveLength(8);
    fireEvent.click(screen.getByRole("button", { name: "+4 more" }));
    expect(rows()).toHaveLength(12);
  });

  it("shows the still, the place in the episode, the change and a watch link", async () => {
    const { impl, calls } = fakeIdentify();
    render(<App identifyImpl={impl} />);
    pickFile();
    const m: Candidate = {
      ...ep(2, 600, 0.97), speed: 1.2, pitch_semitones: 0, end_s: 607, episode_duration_s: 1187, decided_by: "sound",
      watch_url: "https://tv.example/s1e2?t=600", preview_image: "/api/v1/previews/abcdefgh/0.jpg",
      preview_video: "/api/v1/previews/abcdefgh/0.mp4",
    };
    await act(async () => calls[0].resolve({ ...MATCH, match: m, candidates: [m], share_url: "http://localhost:3000/r/abcdefgh" }));
    expect(screen.getByRole("img", { name: "The episode at 10:00" })).toHaveAttribute("src", "/api/v1/previews/abcdefgh/0.jpg?size=medium");
    expect(screen.getByText("19:47")).toBeInTheDocument();
    expect(screen.getByRole("progressbar", { name: "Where in the episode" })).toHaveAttribute("value", "600");
    expect(screen.getByText("The clip plays 20 % faster than the episode, with its pitch kept.")).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Watch from 10:00" })).toHaveAttribute("href", "https://tv.example/s1e2?t=600");
    expect(screen.getByTestId("decided-by")).toHaveTextContent("decided by the sound");
    fireEvent.click(screen.getByRole("button", { name: /Play the scene/ }));
    expect(screen.getByTestId("preview-video")).toHaveAttribute("src", "/api/v1/previews/abcdefgh/0.mp4?size=medium");
    expect((screen.getByTestId("preview-video") as HTMLVideoElement).muted).toBe(true);
    // The short link is the address, and the answer goes into this browser's history.
    expect(window.location.pathname).toBe("/r/abcdefgh");
    expect((screen.getByLabelText("Link to this answer") as HTMLInputElement).value).toBe("http://localhost:3000/r/abcdefgh");
    fireEvent.click(screen.getByRole("button", { name: "Identify another clip" }));
    expect(window.location.pathname).toBe("/");
    expect(screen.getByRole("link", { name: "Demo Show · S01E02 · Title 2" })).toHaveAttribute("href", "http://localhost:3000/r/abcdefgh");
    fireEvent.click(screen.getByRole("button", { name: "Clear this list" }));
    fireEvent.click(screen.getByRole("button", { name: "Yes, clear" }));
    expect(screen.queryByRole("heading", { name: "Your last answers" })).toBeNull();
    expect(window.localStorage.getItem("citywok.history.v1")).toBeNull();
  });

  it("shows the upload percent of a file", () => {
    const { impl, calls } = fakeIdentify();
    render(<App identifyImpl={impl} />);
    pickFile("big.mp4");
    act(() => calls[0].options.onProgress?.({ stage: "sending", percent: 37.2, bytes: 372, total: 1000 }));
    expect(screen.getByText(/Uploading the clip \(37 %\)/)).toBeInTheDocument();
    expect(screen.getByRole("progressbar", { name: "Upload progress" })).toHaveAttribute("value", "37.2");
  });

  it("opens a short share link (/r/<id>) from the server", async () => {
    window.history.replaceState(null, "", "/r/abcdefgh");
    const fetchMock = vi.fn(async (url: string) =>
      url === "/api/v1/shares/abcdefgh" ? Response.json(MATCH) : Response.json({}, { status: 404 }),
    );
    vi.stubGlobal("fetch", fetchMock);
    render(<App identifyImpl={fakeIdentify().impl} />);
    await screen.findByText("Shared answer");
    expect(screen.getByText("S01E02")).toBeInTheDocument();
  });

  it("shows what is left of the quota", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string) =>
        url === "/api/v1/me"
          ? Response.json({ tier: "anonymous", key_id: null, key_name: null, limit: 10, remaining: 7, window_s: 3600, reset_s: 100 })
          : Response.json({}, { status: 404 }),
      ),
    );
    render(<App identifyImpl={fakeIdentify().impl} />);
    expect(await screen.findByTestId("quota")).toHaveTextContent("7 of 10 identifications left this hour.");
  });

  it("says nothing of a quota where nothing is limited (a server on loopback)", async () => {
    const fetchMock = vi.fn(async (url: string) =>
      url === "/api/v1/me"
        ? Response.json({ tier: "anonymous", key_id: null, key_name: null, limit: null, remaining: null, window_s: 0, reset_s: 0 })
        : Response.json({}, { status: 404 }),
    );
    vi.stubGlobal("fetch", fetchMock);
    render(<App identifyImpl={fakeIdentify().impl} />);
    await waitFor(() => expect(fetchMock).toHaveBeenCalledWith("/api/v1/me", expect.anything()));
    await act(async () => undefined);
    expect(screen.queryByTestId("quota")).toBeNull();
  });

  it("says what to try next on no_match", async () => {
    const { impl, calls } = fakeIdentify();
    render(<App identifyImpl={impl} />);
    pickFile();
    await act(async () => calls[0].resolve(NO_MATCH));
    expect(screen.getByRole("heading", { name: "This clip isn't in the library" })).toHaveFocus();
    expect(screen.getByText(/A longer clip/)).toBeInTheDocument();
  });

  it.each([
    [new Problem("rate_limited", "rate limit exceeded", { status: 429, code: "rate_limited", retryAfterS: 1800 }), "Too many clips for now", /Try again in 30 minutes/],
    [new Problem("busy", "the server is busy", { status: 503, code: "busy", retryAfterS: 20 }), "CityWok is busy right now", /Try again in 20 seconds/],
    [new Problem("too_large", "the upload is larger than 50000000 bytes", { status: 413 }), "That file is too big", /Trim it/],
    [new Problem("unsupported"), "That file has no sound we can read", /video or audio file/],
    [new Problem("link_refused", "the host is not allowed"), "That link can't be used", /TikTok/],
    [new Problem("unreachable"), "Can't reach CityWok", /did not answer/],
  ])("explains %s in words", async (problem, title, body) => {
    const { impl, calls } = fakeIdentify();
    render(<App identifyImpl={impl} />);
    pickFile();
    await act(async () => calls[0].reject(problem));
    const heading = screen.getByRole("heading", { name: title });
    expect(heading).toHaveFocus();
    const card = heading.closest("section")!;
    expect(card).toHaveTextContent(body);
    expect(card.textContent).not.toMatch(/[{}]|rate_limited|_/);
    await userEvent.click(screen.getByRole("button", { name: "OK" }));
    expect(screen.getByRole("button", { name: "Choose a file" })).toHaveFocus();
  });

  it("opens a shared answer from the URL fragment", () => {
    window.history.replaceState(null, "", `/#${encodeResult(MATCH)}`);
    render(<App identifyImpl={fakeIdentify().impl} />);
    expect(screen.getByText("Shared answer")).toBeInTheDocument();
    expect(screen.getByText("S01E02")).toBeInTheDocument();
    fireEvent.click(screen.getByRole("button", { name: "Identify another clip" }));
    expect(window.location.hash).toBe("");
  });

  it("copies the share URL", async () => {
    const writeText = vi.fn(async () => undefined);
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    window.history.replaceState(null, "", `/#${encodeResult(MATCH)}`);
    render(<App identifyImpl={fakeIdentify().impl} />);
    await userEvent.click(screen.getByRole("button", { name: "Copy link" }));
    await waitFor(() => expect(screen.getByRole("button", { name: "Copied" })).toBeInTheDocument());
    expect(writeText).toHaveBeenCalledWith(expect.stringContaining("#r="));
    expect(screen.getByRole("status")).toHaveTextContent("Link copied.");
  });
});
