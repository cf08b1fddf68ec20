// How a timeline reads to a person: a colour per episode, labels, and where each segment
// sits on the bar.

import type { TimelineSegment } from "../api/timeline";
import { episodeCode, timestamp } from "./format";

/** Distinct colours (readable with white text, in light and dark), by first appearance. */
export const PALETTE = [
  "#b23c0b", "#1d5fd6", "#17703a", "#8a3ab9", "#a66300", "#0f7c86",
  "#c0266b", "#4d5e10", "#5a4fcf", "#8f2d2d", "#276749", "#9c4f96",
];

/** A key for colouring: the episode, or the set of episodes of a shared stretch. */
export function colourKey(s: TimelineSegment): string | null {
  if (s.status === "unknown" || !s.match) return null;
  if (s.status === "ambiguous") return "shared:" + s.candidates.map((c) => c.episode_id).sort().join(",");
  return s.match.episode_id;
}

/** Episode → colour, assigned in the order episodes first appear. */
export function colours(segments: TimelineSegment[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of segments) {
    const key = colourKey(s);
    if (key && !key.startsWith("shared:") && !out.has(key)) out.set(key, PALETTE[out.size % PALETTE.length]);
  }
  return out;
}

/** "S01E02 Title" (or the show's name when the numbers are unknown). */
export function shortLabel(c: { show: string; season: number | null; episode: number | null; title: string | null }): string {
  const code = episodeCode(c.season, c.episode) || c.show;
  return c.title ? `${code} ${c.title}` : code;
}

/** What a segment is, in a few words. */
export function segmentLabel(s: TimelineSegment): string {
  if (s.status === "unknown" || !s.match) return "Not in the library";
  if (s.status === "ambiguous") return `Shared by ${s.candidates.length} episodes`;
  return shortLabel(s.match);
}

/** "0:00–0:14" in the input. */
export function span(s: TimelineSegment): string {
  return `${timestamp(s.start_s)}–${timestamp(s.end_s)}`;
}

/** Left and width of a segment on a bar of ``totalS`` seconds, in percent. */
export function place(s: TimelineSegment, totalS: number): { left: number; width: number } {
  const total = Math.max(totalS, s.end_s, 1e-9);
  return { left: (100 * s.start_s) / total, width: (100 * (s.end_s - s.start_s)) / total };
}

/** Speed and pitch in words, or null when the segment plays as the episode does. */
export function playbackNote(m: { speed: number; pitch_semitones: number }): string | null {
  const parts: string[] = [];
  if (Math.abs(m.speed - 1) >= 0.02) {
    const pct = Math.round(Math.abs(m.speed - 1) * 100);
    parts.push(`Plays ${pct} % ${m.speed > 1 ? "faster" : "slower"} than the episode.`);
  }
  if (Math.abs(m.pitch_semitones) >= 0.5) {
    const st = Math.round(Math.abs(m.pitch_semitones) * 10) / 10;
    parts.push(`Pitched ${m.pitch_semitones > 0 ? "up" : "down"} ${st} semitone${st === 1 ? "" : "s"}.`);
  }
  return parts.length ? parts.join(" ") : null;
}
