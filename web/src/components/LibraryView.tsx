// What the library holds: counts from /api/v1/stats, the episodes from /api/v1/episodes.

import { useEffect, useState } from "react";
import { fetchEpisodes, fetchStats } from "../api/catalogue";
import type { EpisodeInfo, EpisodePage, Stats } from "../api/types";
import { episodeCode, timestamp } from "../lib/format";

type Load<T> = { state: "loading" } | { state: "failed" } | { state: "ready"; value: T };

interface Season {
  season: number | null;
  episodes: EpisodeInfo[];
}

function group(items: EpisodeInfo[]): Map<string, Season[]> {
  const shows = new Map<string, Season[]>();
  for (const e of items) {
    const seasons = shows.get(e.show) ?? [];
    let season = seasons.find((s) => s.season === e.season);
    if (!season) {
      season = { season: e.season, episodes: [] };
      seasons.push(season);
    }
    season.episodes.push(e);
    shows.set(e.show, seasons);
  }
  return shows;
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

export function LibraryView() {
  const [stats, setStats] = useState<Load<Stats>>({ state: "loading" });
  const [page, setPage] = useState<Load<EpisodePage>>({ state: "loading" });

  useEffect(() => {
    const abort = new AbortController();
    fetchStats(abort.signal).then(
      (value) => setStats({ state: "ready", value }),
      () => abort.signal.aborted || setStats({ state: "failed" }),
    );
    fetchEpisodes(abort.signal).then(
      (value) => setPage({ state: "ready", value }),
      () => abort.signal.aborted || setPage({ state: "failed" }),
    );
    return () => abort.abort();
  }, []);

  let summary: string;
  if (stats.state === "ready") {
    const s = stats.value;
    const hours = s.hours >= 1 ? `${Math.round(s.hours)} hours` : `${Math.max(1, Math.round(s.hours * 60))} minutes`;
    summary = `${plural(s.episodes, "episode", "episodes")} of ${plural(s.shows, "show", "shows")}, ${hours} of audio.`;
  } else if (stats.state === "failed") {
    summary = "The library can't be listed right now.";
  } else {
    summary = "Loading…";
  }

  return (
    <section className="library" aria-labelledby="library-title">
      <h2 id="library-title">In the library</h2>
      <p data-testid="library-summary">{summary}</p>
      {page.state === "ready" && page.value.items.length > 0 && (
        <details>
          <summary>Show the episodes</summary>
          {[...group(page.value.items)].map(([show, seasons]) => (
            <div key={show} className="library-show">
              <h3>{show}</h3>
              {seasons.map((season) => (
                <div key={String(season.season)}>
                  {season.season !== null && <h4>Season {season.season}</h4>}
                  <ul>
                    {season.episodes.map((e) => (
                      <li key={e.episode_id}>
                        <span className="mono">{episodeCode(e.season, e.episode) || "—"}</span>{" "}
                        {e.title ?? e.episode_id}{" "}
                        <span className="hint">({timestamp(e.duration_s)})</span>
                      </li>
                    ))}
                  </ul>
                </div>
              ))}
            </div>
          ))}
          {page.value.total > page.value.items.length && (
            <p className="hint">…and {page.value.total - page.value.items.length} more.</p>
          )}
        </details>
      )}
    </section>
  );
}
