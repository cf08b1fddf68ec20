import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import type { TimelineSegment } from "../api/timeline";
import { TimelineView } from "./TimelineView";

const m = (episode: number, offset_s: number, end_offset_s: number, speed = 1) => ({
  show: "Demo Show", season: 1, episode, title: `Title ${episode}`, episode_id: `demo-show-s01e0${episode}`,
  offset_s, confidence: 0.99, score: 20, speed, pitch_semitones: speed === 1 ? 0 : 3.1, end_offset_s,
});
const SEGMENTS: TimelineSegment[] = [
  { start_s: 0, end_s: 30, status: "match", match: m(2, 615, 645), candidates: [] },
  { start_s: 30, end_s: 45, status: "unknown", match: null, candidates: [] },
  { start_s: 45, end_s: 60, status: "match", match: m(3, 61, 79, 1.2), candidates: [] },
  { start_s: 60, end_s: 75, status: "ambiguous", match: m(1, 2, 17), candidates: [m(1, 2, 17), m(2, 2, 17), m(3, 2, 17)] },
  { start_s: 75, end_s: 90, status: "match", match: m(2, 900, 915), candidates: [] },
];

describe("TimelineView", () => {
  it("draws the bar in proportion, one colour per episode, with the list beside it", () => {
    render(<TimelineView segments={SEGMENTS} totalS={90} />);
    const parts = screen.getByTestId("timeline-bar").querySelectorAll<HTMLElement>(".tl-part");
    expect(Array.from(parts).map((p) => [p.style.left, p.style.width])).toEqual([
      ["0%", `${(100 * 30) / 90}%`], [`${(100 * 30) / 90}%`, `${(100 * 15) / 90}%`],
      [`${(100 * 45) / 90}%`, `${(100 * 15) / 90}%`], [`${(100 * 60) / 90}%`, `${(100 * 15) / 90}%`],
      [`${(100 * 75) / 90}%`, `${(100 * 15) / 90}%`],
    ]);
    // The same episode twice: the same colour; another episode: another one.
    expect(parts[0].style.background).toBe(parts[4].style.background);
    expect(parts[0].style.background).not.toBe(parts[2].style.background);
    expect(parts[1].style.background).toBe("");
    expect(screen.getByRole("heading", { level: 2 }).textContent).toBe("4 scenes from the library");
    const rows = screen.getAllByTestId("segment");
    expect(rows.map((r) => r.textContent)).toEqual([
      "00:00–00:30S01E02 Title 2@ 10:15",
      "00:30–00:45Not in the library",
      "00:45–01:00S01E03 Title 3@ 01:01",
      "01:00–01:15Shared by 3 episodes",
      "01:15–01:30S01E02 Title 2@ 15:00",
    ]);
  });

  it("shows the details of the segment chosen", async () => {
    render(<TimelineView segments={SEGMENTS} totalS={90} />);
    const details = screen.getByTestId("segment-details");
    // The first match is shown at once.
    expect(within(details).getByRole("heading").textContent).toBe("S01E02 Title 2");
    await userEvent.click(screen.getAllByTestId("segment")[2]);
    expect(within(details).getByRole("heading").textContent).toBe("S01E03 Title 3");
    expect(within(details).getByTestId("segment-range").textContent).toBe(
      "00:45–01:00 of the video is 01:01–01:19 of the episode.");
    expect(details.textContent).toContain("Plays 20 % faster than the episode. Pitched up 3.1 semitones.");
    expect(screen.getAllByTestId("segment")[2].getAttribute("aria-pressed")).toBe("true");
    await userEvent.click(screen.getAllByTestId("segment")[3]);
    expect(within(details).getAllByRole("listitem")).toHaveLength(3);
    await userEvent.click(screen.getByTestId("timeline-bar").querySelectorAll<HTMLElement>(".tl-part")[1]);
    expect(within(details).getByRole("heading").textContent).toBe("Not in the library");
  });

  it("grows as segments arrive, showing how far reading has got", () => {
    const { rerender } = render(<TimelineView segments={SEGMENTS.slice(0, 1)} totalS={90} doneS={36} running />);
    expect(screen.getByRole("heading", { level: 2 }).textContent).toBe("Reading the video…");
    expect(screen.getByText("Still reading…")).toBeTruthy();
    expect(screen.getByTestId("timeline-bar").querySelector<HTMLElement>(".tl-read")?.style.width).toBe("40%");
    rerender(<TimelineView segments={SEGMENTS.slice(0, 3)} totalS={90} doneS={70} running />);
    expect(screen.getAllByTestId("segment")).toHaveLength(3);
  });
});
