// Shapes of the CityWok API (see docs/web.md and citywok/result.py).

export type Status = "match" | "ambiguous" | "no_match";

export interface Candidate {
  show: string;
  season: number | null;
  episode: number | null;
  title: string | null;
  episode_id: string;
  /** Where in the episode the clip starts, in seconds. */
  offset_s: number;
  /** Probability-like confidence in [0, 1]. */
  confidence: number;
  score: number;
  /** Playback speed of the clip relative to the episode (1.25 = 25 % fast). */
  speed: number;
  pitch_semitones: number;
}

export interface IdentifyResult {
  file?: string | null;
  status: Status;
  match: Candidate | null;
  candidates: Candidate[];
  elapsed_ms: number;
  clip_duration_s: number;
}

export interface ErrorBody {
  error: { code: string; message: string };
}

export interface Stats {
  episodes: number;
  shows: number;
  hours: number;
  index_bytes: number;
  segments: number;
  hashes: number;
  format_version: number;
}

export interface EpisodeInfo {
  episode_id: string;
  show: string;
  season: number | null;
  episode: number | null;
  title: string | null;
  duration_s: number;
}

export interface EpisodePage {
  items: EpisodeInfo[];
  total: number;
  offset: number;
  limit: number;
}
