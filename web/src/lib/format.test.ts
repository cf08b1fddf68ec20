import { describe, expect, it } from "vitest";
import { ambiguityReason, changeNote, confidenceWords, episodeCode, episodeLabel, speedNote, timestamp, wait } from "./format";


describe("format", () => {
  it("writes timestamps as mm:ss, and h:mm:ss past an hour", () => {
    expect(timestamp(0)).toBe("00:00");
    expect(timestamp(12.4)).toBe("00:12");
    expect(timestamp(83.4)).toBe("01:23");
    expect(timestamp(3723)).toBe("1:02:03");
  });

  it("rounds once, then carries (as citywok.display.clock does)", () => {
    expect(timestamp(599.99)).toBe("10:00");
    expect(timestamp(59.5)).toBe("01:00");
    expect(timestamp(3599.5)).toBe("1:00:00");
    expect(timestamp(12.9)).toBe("00:13");
    expect(timestamp(-2)).toBe("00:00");
    expect(timestamp(Number.NaN)).toBe("?");
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

  it("gives the reason the catalogue names, never a guess from offsets (issue 8, item 11)", () => {
    // An opening theme heard early in every episode, and named so by the catalogue.
    expect(ambiguityReason({ kind: "intro", episodes: 12 }, 12)).toContain("opening theme, which all 12 episodes share");
    expect(ambiguityReason({ kind: "outro", episodes: 2 }, 2)).toContain("end credits, which both episodes share");
    expect(ambiguityReason({ kind: "cue", episodes: 5 }, 5)).toContain("recurring music cue");
    // Unknown kind: neither theme nor cue is claimed.
    const neutral = ambiguityReason(null, 3);
    expect(neutral).not.toMatch(/opening theme|music cue|credits/);
    expect(neutral).toContain("share this stretch of sound");
  });

  it("says how the sound was changed, in words", () => {
    expect(changeNote(1.0, 0.1)).toBeNull();
    expect(changeNote(1.15, 12 * Math.log2(1.15))).toBe("The clip plays 15 % faster than the episode.");
    expect(changeNote(0.8, 0)).toBe("The clip plays 20 % slower than the episode, with its pitch kept.");
    expect(changeNote(1.0, 3)).toBe("The clip sounds 3 semitones higher.");
    expect(changeNote(1.0, -1.5)).toBe("The clip sounds 1.5 semitones lower.");
  });
});
