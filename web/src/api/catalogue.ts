// GET /api/v1/stats and /api/v1/episodes: what the library holds; /api/v1/me: what is
// left of the caller's quota; /api/v1/shares/<id>: a shared answer.

import type { EpisodePage, IdentifyResult, Me, Stats } from "./types";

async function getJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  const response = await fetch(url, { headers: { Accept: "application/json" }, signal });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return (await response.json()) as T;
}

export function fetchStats(signal?: AbortSignal): Promise<Stats> {
  return getJson<Stats>("/api/v1/stats", signal);
}

export function fetchEpisodes(signal?: AbortSignal, limit = 500): Promise<EpisodePage> {
  return getJson<EpisodePage>(`/api/v1/episodes?limit=${limit}`, signal);
}

export function fetchMe(signal?: AbortSignal): Promise<Me> {
  return getJson<Me>("/api/v1/me", signal);
}

/** The answer behind a `/r/<id>` link, or null when it is unknown or expired. */
export async function fetchShare(id: string, signal?: AbortSignal): Promise<IdentifyResult | null> {
  if (!/^[A-Za-z0-9_-]{8}$/.test(id)) return null;
  try {
    return await getJson<IdentifyResult>(`/api/v1/shares/${id}`, signal);
  } catch {
    return null;
  }
}
