import { act, fireEvent, render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import type { Source } from "../api/identify";
import { Problem } from "../api/problem";
import type { TimelineOptions, TimelineResult, TimelineSegment } from "../api/timeline";
import { TimelineMode } from "./TimelineMode";

const MATCH = {
  show: "Demo Show", season: 1, episode: 2, title: "Station Basket", episode_id: "demo-show-s01e02",
  offset_s: 10, confidence: 1, score: 20, speed: 1, pitch_semitones: 0, end_offset_s: 19,
};
const SEGMENTS: TimelineSegment[] = [
  { start_s: 0, end_s: 9, status: "match", match: MATCH, candidates: [] },
  { start_s: 9, end_s: 25, status: "unknown", match: null, candidates: [] },
];

function fake() {
  const calls: { source: Source; options: TimelineOptions; resolve: (r: TimelineResult) => void; reject: (e: unknown) => void }[] = [];
  const impl = vi.fn(
    (source: Source, options: TimelineOptions = {}) =>
      new Promise<TimelineResult>((resolve, reject) => {
        calls.push({ source, options, resolve, reject });
        options.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
      }),
  );
  return { impl, calls };
}

function pick(name = "mix.mp4") {
  const input = screen.getByTestId("timeline-file-input");
  fireEvent.change(input, { target: { files: [new File(["x"], name, { type: "video/mp4" })] } });
}

describe("TimelineMode", () => {
  it("shows segments as they arrive, then the whole timeline", async () => {
    const { impl, calls } = fake();
    render(<TimelineMode timelineImpl={impl} />);
    pick();
    expect(calls[0].source).toMatchObject({ kind: "file", name: "mix.mp4" });
    act(() => calls[0].options.onProgress?.({ stage: "reading", doneS: 12, totalS: 25, percent: 48 }));
    expect(screen.getByTestId("timeline-progress").textContent).toBe("Read 00:12 of 00:25 (48 %)");
    act(() => calls[0].options.onSegment?.(SEGMENTS[0]));
    expect(screen.getAllByTestId("segment")).toHaveLength(1);
    expect(screen.getByTestId("segment-details").textContent).toContain("S01E02 Station Basket");
    act(() => calls[0].options.onSegment?.(SEGMENTS[1]));
    await act(async () => calls[0].resolve({ file: "mix.mp4", duration_s: 25, segments: SEGMENTS, elapsed_ms: 50 }));
    expect(screen.getByRole("heading", { level: 2 }).textContent).toBe("1 scene from the library");
    await userEvent.click(screen.getByRole("button", { name: "Another video" }));
    expect(screen.getByRole("heading", { name: "Timeline of a long video" })).toBeTruthy();
  });

  it("cancels, and explains a problem", async () => {
    const { impl, calls } = fake();
    render(<TimelineMode timelineImpl={impl} />);
    pick();
    await userEvent.click(screen.getByRole("button", { name: "Cancel" }));
    expect(calls[0].options.signal?.aborted).toBe(true);
    expect(screen.getByTestId("notice").textContent).toContain("Cancelled");
    await userEvent.type(screen.getByLabelText("Or paste a link"), "https://youtu.be/abc");
    await userEvent.click(screen.getByRole("button", { name: "Make the timeline" }));
    expect(calls[1].source).toEqual({ kind: "link", url: "https://youtu.be/abc" });
    await act(async () => calls[1].reject(new Problem("too_long", "longer than allowed")));
    expect(screen.getByRole("heading", { level: 2 }).id).toBe("problem-title");
  });
});
