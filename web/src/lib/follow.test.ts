import { describe, expect, it } from "vitest";
import type { LiveEvent } from "../api/listen";
import type { Candidate, IdentifyResult } from "../api/types";
import { applyLive, endSentence, KEPT_CHANGES, startFollowing } from "./follow";

const place = (offset_s: number, speed = 1): Candidate => ({
  show: "Demo Show", season: 1, episode: 2, title: "Forest Orange", episode_id: "demo-show-s01e02",
  offset_s, confidence: 1, score: 20, speed, pitch_semitones: 0,
});

describe("following", () => {
  it("starts where the answer's place is now, at the clip's speed", () => {
    const result: IdentifyResult = { status: "match", match: place(100, 1.25), candidates: [], elapsed_ms: 1, clip_duration_s: 4 };
    expect(startFollowing(result, 4)?.place.offset_s).toBe(105);
    expect(startFollowing({ ...result, match: null }, 4)).toBeNull();
  });

  it("keeps the last few changes, newest first", () => {
    let state = startFollowing({ status: "match", match: place(0), candidates: [], elapsed_ms: 1, clip_duration_s: 3 }, 3)!;
    for (let n = 1; n <= KEPT_CHANGES + 2; n++) {
      const seek: LiveEvent = { event: "found", at_s: n * 10, status: "match", change: "seek", match: place(n * 60), candidates: [] };
      state = applyLive(state, seek);
    }
    expect(state.changes).toHaveLength(KEPT_CHANGES);
    expect(state.changes[0]).toBe("Jumped to 07:00.");
    expect(state.heardS).toBe((KEPT_CHANGES + 2) * 10);
  });

  it("tells a pause, a loss and the episode's end apart", () => {
    const state = startFollowing({ status: "match", match: place(1790), candidates: [], elapsed_ms: 1, clip_duration_s: 3 }, 3)!;
    const lost = (reason: "pause" | "mismatch" | "end"): LiveEvent => ({ event: "lost", at_s: 20, since_s: 18, reason, last: place(1800) });
    expect(applyLive(state, lost("pause"))).toMatchObject({ phase: "paused", changes: ["Paused at 30:00."] });
    expect(applyLive(state, lost("mismatch")).changes[0]).toBe("Lost it at 30:00: listening for where it went.");
    expect(applyLive(state, lost("end"))).toMatchObject({ phase: "lost", changes: ["The episode ended (30:00): listening for what plays next."] });
  });

  it("says why it ended, with where it was", () => {
    const state = startFollowing({ status: "match", match: place(60), candidates: [], elapsed_ms: 1, clip_duration_s: 3 }, 3);
    const limits = { max_s: 1800, idle_s: 300 };
    expect(endSentence("idle", state, limits)).toBe(
      "Stopped following: the episode was not heard for 5 minutes. Last: Demo Show S01E02 Forest Orange at 01:03.",
    );
    expect(endSentence("ended", null, null)).toBe("The sound ended, so following stopped.");
  });
});
