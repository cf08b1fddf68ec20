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
  /** Where in the episode the clip's scene ends (seconds). */
  end_s?: number | null;
  /** How long the episode is (seconds). */
  episode_duration_s?: number | null;
  /** Where to watch the episode from this moment. */
  watch_url?: string | null;
  /** A still of the moment (JPEG) and a few seconds of the scene (MP4, muted). */
  preview_image?: string | null;
  preview_video?: string | null;
}

/** Why an answer is ambiguous, from the catalogue. */
export interface SharedMaterial {
  kind: "intro" | "outro" | "cue";
  episodes: number;
}

export interface IdentifyResult {
  file?: string | null;
  status: Status;
  match: Candidate | null;
  candidates: Candidate[];
  elapsed_ms: number;
  clip_duration_s: number;
  /** For ambiguous answers: the kind of shared material, when the catalogue knows it. */
  shared?: SharedMaterial | null;
  /** A short link to this answer (`/r/<id>`), or null when sharing is off. */
  share_url?: string | null;
}

/** GET /api/v1/me: the caller's tier and what is left of its quota. */
export interface Me {
  tier: "anonymous" | "key";
  key_id: string | null;
  key_name: string | null;
  /** null: no limit (a server listening on loopback only). */
  limit: number | null;
  remaining: number | null;
  window_s: number;
  reset_s: number;
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
