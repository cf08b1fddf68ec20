import { describe, expect, it } from "vitest";
import type { Candidate } from "../api/types";
import { ambiguityReason, confidenceWords, episodeCode, episodeLabel, speedNote, timestamp, wait } from "./format";

const cand = (offset_s: number, episode = 1): Candidate => ({
  show: "S", season: 1, episode, title: null, episode_id: `e${episode}`, offset_s, confidence: 0.33, score: 1, speed: 1, pitch_semitones: 0,
});

describe("format", () => {
  it("writes timestamps as mm:ss, and h:mm:ss past an hour", () => {
    expect(timestamp(0)).toBe("00:00");
    expect(timestamp(12.9)).toBe("00:12");
    expect(timestamp(83.4)).toBe("01:23");
    expect(timestamp(3723)).toBe("1:02:03");
  });

  it("writes SxxEyy with what is known", () => {
    expect(episodeCode(1, 2)).toBe("S01E02");
    expect(episodeCode(null, 7)).toBe("E07");
    expect(episodeCode(null, null)).toBe("");
    expect(episodeLabel({ season: 3, episode: 10, title: "Pilot" })).toBe("S03E10 · Pilot");
  });

  it("puts confidence in words", () => {
    expect(confidenceWords(0.99)).toBe("Very sure");
    expect(confidenceWords(0.75)).toBe("Fairly sure");
    expect(confidenceWords(0.5)).toBe("Not sure");
    expect(confidenceWords(0.1)).toBe("A guess");
  });

  it("mentions speed only when it is noticeable", () => {
    expect(speedNote(1.01)).toBeNull();
    expect(speedNote(1.15)).toBe("The clip plays 15 % faster than the episode.");
    expect(speedNote(0.8)).toBe("The clip plays 20 % slower than the episode.");
  });

  it("says how long to wait", () => {
    expect(wait(1)).toBe("1 second");
    expect(wait(45)).toBe("45 seconds");
    expect(wait(61)).toBe("2 minutes");
    expect(wait(3600)).toBe("60 minutes");
    expect(wait(7200)).toBe("about 2 hours");
  });

  it("explains ambiguity from where the clip falls", () => {
    expect(ambiguityReason([cand(1), cand(1.2, 2)])).toContain("opening theme");
    expect(ambiguityReason([cand(600), cand(601, 2)])).toContain("same point");
    expect(ambiguityReason([cand(100), cand(900, 2)])).toContain("shared material");
  });
});
