// A human message for every Problem: a headline, what it means, and what to do.

import type { Problem } from "../api/problem";
import { wait } from "./format";

export interface Message {
  title: string;
  body: string;
  /** The server's own words, shown small, when they add something. */
  detail?: string;
}

/** "Try again in 20 seconds." from the server's Retry-After, else "Try again <otherwise>." */
function tryAgain(problem: Problem, otherwise: string): string {
  const after = problem.options.retryAfterS;
  return after != null ? `Try again in ${wait(after)}.` : `Try again ${otherwise}.`;
}

export function describeProblem(problem: Problem): Message {
  const detail = problem.detail ?? undefined;
  switch (problem.kind) {
    case "too_large":
      return {
        title: "That file is too big",
        body: "Trim it to the part you want to identify (a few seconds are enough) and try again, or paste a link to it instead.",
      };
    case "too_long":
      return {
        title: "That clip is too long",
        body: "Cut out the part you want to identify: 5 to 30 seconds are plenty.",
      };
    case "unsupported":
      return {
        title: "That file has no sound we can read",
        body: "Try a video or audio file (MP4, MOV, WebM, MP3, M4A, WAV …) with a sound track.",
      };
    case "unusable":
      return {
        title: "That clip can't be used",
        body: "It seems to be empty, silent or damaged. Try another recording of the scene.",
        detail,
      };
    case "rate_limited":
      return {
        title: "Too many clips for now",
        body: `You have reached the limit for the moment. ${tryAgain(problem, "a little later")}`,
      };
    case "busy":
      return {
        title: "CityWok is busy right now",
        body: `Many clips are waiting to be identified. ${tryAgain(problem, "in a moment")}`,
      };
    case "link_refused":
      return {
        title: "That link can't be used",
        body: "Links to TikTok, YouTube, Instagram, X and Reddit work. For anything else, download the video and drop the file here.",
        detail,
      };
    case "download_failed":
      return {
        title: "The video behind that link couldn't be fetched",
        body: "It may be private, removed or region-locked. Download it yourself and drop the file here instead.",
        detail,
      };
    case "unreachable":
      return {
        title: "Can't reach CityWok",
        body: "The server did not answer. Check your connection and try again in a moment.",
      };
    case "unavailable":
      return {
        title: "CityWok isn't ready",
        body: "The server has no library loaded right now. Try again later.",
      };
    case "microphone_denied":
      return {
        title: "The microphone is blocked",
        body: "Listening needs the microphone. Allow it for this site in your browser's settings (the icon next to the address), or drop a file instead.",
      };
    case "microphone_missing":
      return {
        title: "No microphone found",
        body: "Connect a microphone, or drop a file or paste a link instead.",
      };
    case "microphone_unsupported":
      return {
        title: "This browser can't record",
        body: "Drop a file or paste a link instead, or open the page in a current browser.",
      };
    default:
      return {
        title: "Something went wrong",
        body: "The clip could not be identified. Try again, or try another clip.",
        detail,
      };
  }
}
