// This browser's last answers, in local storage only (never sent anywhere), clearable.

import type { IdentifyResult } from "../api/types";
import { episodeCode } from "./format";
import { shareUrl } from "./share";

const KEY = "citywok.history.v1";
export const MAX_ENTRIES = 20;

export interface HistoryEntry {
  /** When it was answered (ms since the epoch). */
  at: number;
  status: IdentifyResult["status"];
  label: string;
  /** The answer's share link (or its #r= fragment link). */
  url: string;
}

export function describeForHistory(result: IdentifyResult): string {
  const m = result.match;
  if (result.status === "match" && m) return [m.show, episodeCode(m.season, m.episode), m.title].filter(Boolean).join(" · ");
  if (result.status === "ambiguous") {
    const shows = [...new Set(result.candidates.map((c) => c.show))].join(", ");
    return `One of ${result.candidates.length} episodes of ${shows}`;
  }
  return "Not in the library";
}

export function readHistory(storage: Storage = window.localStorage): HistoryEntry[] {
  try {
    const parsed = JSON.parse(storage.getItem(KEY) ?? "[]") as unknown;
    if (!Array.isArray(parsed)) return [];
    return parsed
      .filter(
        (e): e is HistoryEntry =>
          typeof e === "object" && e !== null && typeof e.at === "number" && typeof e.label === "string" &&
          typeof e.url === "string" && /^https?:\/\//.test(e.url) && ["match", "ambiguous", "no_match"].includes(e.status),
      )
      .slice(0, MAX_ENTRIES);
  } catch {
    return [];
  }
}

export function addToHistory(result: IdentifyResult, storage: Storage = window.localStorage, now = Date.now()): HistoryEntry[] {
  const entry: HistoryEntry = {
    at: now,
    status: result.status,
    label: describeForHistory(result),
    url: result.share_url ?? shareUrl(result),
  };
  const next = [entry, ...readHistory(storage).filter((e) => e.url !== entry.url)].slice(0, MAX_ENTRIES);
  try {
    storage.setItem(KEY, JSON.stringify(next));
  } catch {
    // Storage full or off (private mode): the history is a convenience.
  }
  return next;
}

export function clearHistory(storage: Storage = window.localStorage): void {
  try {
    storage.removeItem(KEY);
  } catch {
    // nothing to clear
  }
}
