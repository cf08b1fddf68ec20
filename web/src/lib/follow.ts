// Following an episode as it plays: the state the page shows, built from the answer and
// then from each event of the server's live tracker (see api/listen.ts).

import type { FollowEnd, LiveEvent } from "../api/listen";
import type { Candidate, IdentifyResult, Status } from "../api/types";
import { episodeCode, timestamp } from "./format";

/** playing: the place is followed; paused: the sound went quiet; lost: something else plays. */
export type FollowPhase = "playing" | "paused" | "lost";

export interface FollowState {
  phase: FollowPhase;
  /** The place now (while playing), or where it was when it paused or was lost. */
  place: Candidate;
  status: Status;
  /** An ambiguous place: every episode that fits. */
  candidates: Candidate[];
  /** Seconds of sound heard so far. */
  heardS: number;
  /** What changed, newest first (at most {@link KEPT_CHANGES}). */
  changes: string[];
}

/** Changes kept in the list. */
export const KEPT_CHANGES = 5;

function moved(c: Candidate, byS: number): Candidate {
  return { ...c, offset_s: c.offset_s + byS * c.speed };
}

/**
 * The state right after the answer: the answer's offset is where the heard sound began,
 * so the place now is that much further on. Null when there is nothing to follow.
 */
export function startFollowing(result: IdentifyResult, heardS: number): FollowState | null {
  const first = result.match ?? result.candidates[0];
  if (!first) return null;
  return {
    phase: "playing",
    place: moved(first, heardS),
    status: result.status,
    candidates: result.status === "ambiguous" ? result.candidates.map((c) => moved(c, heardS)) : [],
    heardS,
    changes: [],
  };
}

/** "S01E03 Anchor Silver" (or the show's name when the numbers are unknown). */
export function episodeName(c: Candidate): string {
  return [episodeCode(c.season, c.episode) || c.show, c.title].filter(Boolean).join(" ");
}

/** "Demo Show S01E03 Anchor Silver". */
function fullName(c: Candidate): string {
  return [c.show, episodeCode(c.season, c.episode), c.title].filter(Boolean).join(" ");
}

/** One sentence for a change a person would want to know about; null for the rest. */
export function changeSentence(event: LiveEvent): string | null {
  if (event.event === "found") {
    const at = timestamp(event.match.offset_s);
    switch (event.change) {
      case "resume":
        return `Playing again at ${at}.`;
      case "seek":
        return `Jumped to ${at}.`;
      case "episode":
        return `Another episode: ${episodeName(event.match)}, at ${at}.`;
      case "resolved":
        return `It is ${episodeName(event.match)}.`;
      default:
        return null; // the first place: the answer already said it
    }
  }
  if (event.event === "lost") {
    const at = timestamp(event.last.offset_s);
    if (event.reason === "pause") return `Paused at ${at}.`;
    if (event.reason === "end") return `The episode ended (${at}): listening for what plays next.`;
    return `Lost it at ${at}: listening for where it went.`;
  }
  return null;
}

/** The state after one event. */
export function applyLive(state: FollowState, event: LiveEvent): FollowState {
  const heardS = Math.max(state.heardS, event.at_s);
  const said = changeSentence(event);
  const changes = said ? [said, ...state.changes].slice(0, KEPT_CHANGES) : state.changes;
  switch (event.event) {
    case "found":
    case "position":
      return {
        phase: "playing",
        place: event.match,
        status: event.status,
        candidates: event.status === "ambiguous" ? event.candidates : [],
        heardS,
        changes,
      };
    case "lost":
      return { ...state, phase: event.reason === "pause" ? "paused" : "lost", place: event.last, heardS, changes };
    default:
      return { ...state, heardS };
  }
}

/** Why following ended, in a sentence (with where it was). */
export function endSentence(reason: FollowEnd, state: FollowState | null, limits: { max_s: number; idle_s: number } | null): string {
  const where = state ? ` Last: ${fullName(state.place)} at ${timestamp(state.place.offset_s)}.` : "";
  const minutes = (s: number) => {
    const m = Math.round(s / 60);
    return m >= 1 ? `${m} minute${m === 1 ? "" : "s"}` : `${Math.round(s)} seconds`;
  };
  switch (reason) {
    case "stopped":
      return `Stopped following.${where}`;
    case "limit":
      return `Stopped following after ${limits ? minutes(limits.max_s) : "a while"}, the most this server follows. Press Listen to go on.${where}`;
    case "idle":
      return `Stopped following: the episode was not heard for ${limits ? minutes(limits.idle_s) : "a while"}.${where}`;
    case "disconnected":
      return `The connection to the server was lost, so following stopped.${where}`;
    default:
      return `The sound ended, so following stopped.${where}`;
  }
}
