// GET /api/v1/stats and /api/v1/episodes: what the library holds.

import type { EpisodePage, Stats } from "./types";

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
