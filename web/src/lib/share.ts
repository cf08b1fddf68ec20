// A result's shareable URL: the answer itself, compact and base64url-encoded, in the
// fragment (`/#r=...`). Fragments never reach the server, so nothing is stored there and
// nothing leaks into its logs. What comes back from a URL is untrusted and validated.

import type { Candidate, IdentifyResult, Status } from "../api/types";

const VERSION = 1;
const MAX_CANDIDATES = 10;
const MAX_FRAGMENT = 6000;

type Packed = [string, number | null, number | null, string | null, string, number, number, number];

function pack(c: Candidate): Packed {
  const r = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;
  return [c.show, c.season, c.episode, c.title, c.episode_id, r(c.offset_s, 2), r(c.confidence, 3), r(c.speed, 3)];
}

function unpack(p: unknown): Candidate | null {
  if (!Array.isArray(p) || p.length !== 8) return null;
  const [show, season, episode, title, id, offset, confidence, speed] = p as unknown[];
  const intOrNull = (x: unknown) => x === null || (Number.isInteger(x) && (x as number) >= 0);
  const finite = (x: unknown) => typeof x === "number" && Number.isFinite(x);
  if (typeof show !== "string" || show.length > 300 || typeof id !== "string" || id.length > 300) return null;
  if (!intOrNull(season) || !intOrNull(episode)) return null;
  if (title !== null && (typeof title !== "string" || title.length > 300)) return null;
  if (!finite(offset) || !finite(confidence) || !finite(speed)) return null;
  return {
    show,
    season: season as number | null,
    episode: episode as number | null,
    title: title as string | null,
    episode_id: id,
    offset_s: Math.max(0, offset as number),
    confidence: Math.min(1, Math.max(0, confidence as number)),
    score: 0,
    speed: speed as number,
    pitch_semitones: 0,
  };
}

function toBase64Url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): string {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  const bytes = Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
  return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
}

/** The fragment (without `#`) that carries ``result``. */
export function encodeResult(result: IdentifyResult): string {
  const candidates = result.candidates.slice(0, MAX_CANDIDATES);
  if (result.match && !candidates.some((c) => c.episode_id === result.match?.episode_id && c.offset_s === result.match?.offset_s)) {
    candidates.unshift(result.match);
  }
  const payload = {
    v: VERSION,
    s: result.status,
    m: result.match ? 1 : 0,
    d: Math.round(result.clip_duration_s * 10) / 10,
    c: candidates.map(pack),
  };
  return `r=${toBase64Url(JSON.stringify(payload))}`;
}

/** The result a fragment carries, or null when it carries none (or anything invalid). */
export function decodeResult(fragment: string): IdentifyResult | null {
  const text = fragment.replace(/^#/, "");
  if (!text.startsWith("r=") || text.length > MAX_FRAGMENT) return null;
  try {
    const payload = JSON.parse(fromBase64Url(text.slice(2))) as Record<string, unknown>;
    if (payload.v !== VERSION || !Array.isArray(payload.c)) return null;
    const status = payload.s as Status;
    if (!["match", "ambiguous", "no_match"].includes(status)) return null;
    const candidates = (payload.c as unknown[]).slice(0, MAX_CANDIDATES).map(unpack);
    if (candidates.some((c) => c === null)) return null;
    const list = candidates as Candidate[];
    const match = payload.m === 1 && list.length > 0 ? list[0] : null;
    if (status !== "no_match" && match === null) return null;
    const duration = typeof payload.d === "number" && Number.isFinite(payload.d) ? payload.d : 0;
    return { status, match, candidates: list, elapsed_ms: 0, clip_duration_s: duration };
  } catch {
    return null;
  }
}

/** The full URL to share for ``result``, based on the page's own address. */
export function shareUrl(result: IdentifyResult, base: string = window.location.href): string {
  const url = new URL(base);
  url.search = "";
  url.hash = encodeResult(result);
  return url.toString();
}
