// How numbers of an answer read to a person.

import type { Candidate, SharedMaterial } from "../api/types";

/**
 * 83.4 → "01:23"; 3723 → "1:02:03"; 599.99 → "10:00". Rounded once, half up, to whole
 * seconds, and only then split (never "09:60" or "09:59"): the rule of the CLI's
 * `citywok.display.clock`. Negative times read as zero; a time that is not a number as "?".
 */
export function timestamp(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const total = Math.floor(Math.max(0, seconds) + 0.5);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mmss = `${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
  return h > 0 ? `${h}:${mmss}` : mmss;
}

/** "S01E02", "E02" or "" when the numbers are unknown. */
export function episodeCode(season: number | null, episode: number | null): string {
  const two = (n: number) => String(n).padStart(2, "0");
  if (season !== null && episode !== null) return `S${two(season)}E${two(episode)}`;
  if (episode !== null) return `E${two(episode)}`;
  return "";
}

/** "S01E02 · Title" with whatever is known. */
export function episodeLabel(c: Pick<Candidate, "season" | "episode" | "title">): string {
  return [episodeCode(c.season, c.episode), c.title].filter(Boolean).join(" · ");
}

/** 0.97 → "97 %". */
export function percent(value: number): string {
  return `${Math.round(value * 100)} %`;
}

/** Confidence in words, for people who don't read numbers. */
export function confidenceWords(confidence: number): string {
  if (confidence >= 0.9) return "Very sure";
  if (confidence >= 0.7) return "Fairly sure";
  if (confidence >= 0.4) return "Not sure";
  return "A guess";
}

/** A note on speed when the clip was sped up or slowed down noticeably. */
export function speedNote(speed: number): string | null {
  if (!Number.isFinite(speed) || Math.abs(speed - 1) < 0.03) return null;
  const pct = Math.round(Math.abs(speed - 1) * 100);
  return `The clip plays ${pct} % ${speed > 1 ? "faster" : "slower"} than the episode.`;
}

/**
 * Why several episodes fit equally well: the kind of shared material the catalogue names
 * (never a guess from where the clip falls, which the opening theme and a recurring cue
 * can both look like); a neutral sentence when the catalogue does not say.
 */
export function ambiguityReason(shared: SharedMaterial | null | undefined, count: number): string {
  const all = count > 2 ? `all ${count} episodes` : "both episodes";
  switch (shared?.kind) {
    case "intro":
      return `This is the opening theme, which ${all} share, so the clip alone cannot tell them apart. A clip from later in the episode will.`;
    case "outro":
      return `These are the end credits, which ${all} share, so the clip alone cannot tell them apart. A clip from before the credits will.`;
    case "cue":
      return `This is a recurring music cue (or another stretch of sound ${all} share), so the clip alone cannot tell them apart. A clip with dialogue will.`;
    default:
      return `These episodes share this stretch of sound, so the clip alone cannot tell them apart. A clip from another moment will.`;
  }
}

/**
 * How the clip's sound differs from the episode's, in words, or null when it does not.
 * A sped-up clip whose pitch followed (played faster) says only the speed; a change of
 * pitch beyond what the speed explains is said too.
 */
export function changeNote(speed: number, pitchSemitones: number): string | null {
  const parts: string[] = [];
  const sped = Number.isFinite(speed) && Math.abs(speed - 1) >= 0.03;
  if (sped) {
    const pct = Math.round(Math.abs(speed - 1) * 100);
    parts.push(`plays ${pct} % ${speed > 1 ? "faster" : "slower"} than the episode`);
  }
  const pitch = Number.isFinite(pitchSemitones) ? pitchSemitones : 0;
  const followed = sped && Math.abs(pitch - 12 * Math.log2(speed)) < 0.5;
  if (sped && Math.abs(pitch) < 0.5) {
    parts.push("with its pitch kept");
  } else if (!followed && Math.abs(pitch) >= 0.5) {
    const n = Math.round(Math.abs(pitch) * 10) / 10;
    parts.push(`sounds ${n} semitone${n === 1 ? "" : "s"} ${pitch > 0 ? "higher" : "lower"}`);
  }
  if (parts.length === 0) return null;
  return `The clip ${parts.join(", ")}.`;
}

/** 1536 → "1.5 kB" (decimal units, as a person counts). */
export function bytes(n: number): string {
  if (n < 1000) return `${n} B`;
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)} kB`;
  if (n < 1_000_000_000) return `${(n / 1_000_000).toFixed(1)} MB`;
  return `${(n / 1_000_000_000).toFixed(1)} GB`;
}

/** A wait in words: 45 → "45 seconds", 3599 → "60 minutes", 7200 → "2 hours". */
export function wait(seconds: number): string {
  const s = Math.max(1, Math.ceil(seconds));
  if (s < 60) return s === 1 ? "1 second" : `${s} seconds`;
  const m = Math.ceil(s / 60);
  if (m <= 90) return m === 1 ? "1 minute" : `${m} minutes`;
  const h = Math.round(s / 3600);
  return h === 1 ? "about an hour" : `about ${h} hours`;
}
