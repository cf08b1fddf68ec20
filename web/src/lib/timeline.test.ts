import { describe, expect, it } from "vitest";
import type { TimelineSegment } from "../api/timeline";
import { PALETTE, colours, place, playbackNote, segmentLabel } from "./timeline";

const m = (id: string, episode: number) => ({
  show: "Demo", season: 1, episode, title: "T", episode_id: id, offset_s: 1, confidence: 1, score: 1,
  speed: 1, pitch_semitones: 0, end_offset_s: 2,
});
const seg = (start_s: number, end_s: number, id: string | null, ambiguous = false): TimelineSegment => ({
  start_s, end_s,
  status: id === null ? "unknown" : ambiguous ? "ambiguous" : "match",
  match: id === null ? null : m(id, 1),
  candidates: ambiguous && id ? [m(id, 1), m(id + "b", 2)] : [],
});

describe("timeline helpers", () => {
  it("colours each episode once, in order of appearance, and never shared or unknown stretches", () => {
    const c = colours([seg(0, 5, "a"), seg(5, 6, null), seg(6, 9, "b"), seg(9, 12, "a"), seg(12, 14, "c", true)]);
    expect([...c.entries()]).toEqual([["a", PALETTE[0]], ["b", PALETTE[1]]]);
  });

  it("places segments on the bar in percent of the input", () => {
    expect(place(seg(25, 50, "a"), 100)).toEqual({ left: 25, width: 25 });
    // Past the known length (still reading): the bar stretches to the segment.
    expect(place(seg(50, 200, "a"), 100)).toEqual({ left: 25, width: 75 });
  });

  it("says what a segment is and how it plays", () => {
    expect(segmentLabel(seg(0, 1, null))).toBe("Not in the library");
    expect(segmentLabel(seg(0, 1, "a", true))).toBe("Shared by 2 episodes");
    expect(segmentLabel(seg(0, 1, "a"))).toBe("S01E01 T");
    expect(playbackNote({ speed: 1.19, pitch_semitones: 3.01 })).toBe("Plays 19 % faster than the episode. Pitched up 3 semitones.");
    expect(playbackNote({ speed: 1.0, pitch_semitones: -1 })).toBe("Pitched down 1 semitone.");
    expect(playbackNote({ speed: 1.005, pitch_semitones: 0.1 })).toBeNull();
  });
});
