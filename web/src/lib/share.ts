// A result's shareable URL: the answer itself, as JSON with named fields, base64url-encoded,
// in the fragment (`/#r=...`). Fragments never reach the server, so nothing is stored there
// and nothing leaks into its logs. What comes back from a URL is untrusted and validated.
//
// The candidates are the answer model's own (src/citywok/result.py; their type is
// generated from the API's OpenAPI document), less the links, which only the server makes.
// A field added to the answer is carried by new links without a change here.

import type { Candidate, IdentifyResult, Status } from "../api/types";

const MAX_CANDIDATES = 10;
const MAX_FRAGMENT = 8000;
const MAX_TEXT = 300;
const STATUSES: readonly Status[] = ["match", "ambiguous", "no_match"];
/** Made by the server for each showing of an answer; never carried in a link. */
const LINK_FIELDS = ["watch_url", "preview_image", "preview_video"] as const;

/** What a link carries: the answer by name (v2). */
interface Carried {
  v: 2;
  status: Status;
  /** Which of `candidates` is the match (-1: none). */
  match: number;
  clip_duration_s: number;
  candidates: Record<string, unknown>[];
}

function round(x: number, digits: number): number {
  return Math.round(x * 10 ** digits) / 10 ** digits;
}

function carried(c: Candidate): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(c)) {
    if ((LINK_FIELDS as readonly string[]).includes(key) || value === undefined) continue;
    out[key] = value;
  }
  // Shorter links: places to the hundredth of a second, confidence and speed to 0.1 %.
  out.offset_s = round(c.offset_s, 2);
  out.confidence = round(c.confidence, 3);
  out.speed = round(c.speed, 3);
  return out;
}

const finite = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);
const count = (x: unknown) => x === null || (Number.isInteger(x) && (x as number) >= 0);
const text = (x: unknown) => typeof x === "string" && x.length <= MAX_TEXT;

/** A candidate from a link, or null when it is not one. Fields the page knows are
 * checked; any other field is kept only when it is a short string, a number, a boolean
 * or null (a field newer than this page, shown by a newer one). */
function candidateFrom(x: unknown): Candidate | null {
  if (typeof x !== "object" || x === null || Array.isArray(x)) return null;
  const c = x as Record<string, unknown>;
  if (!text(c.show) || !text(c.episode_id) || !count(c.season) || !count(c.episode)) return null;
  if (c.title !== null && !text(c.title)) return null;
  if (!finite(c.offset_s) || !finite(c.confidence) || !finite(c.speed)) return null;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(c)) {
    if ((LINK_FIELDS as readonly string[]).includes(key)) continue;
    if (value === null || typeof value === "boolean" || finite(value) || text(value)) out[key] = value;
  }
  return {
    ...out,
    offset_s: Math.max(0, c.offset_s),
    confidence: Math.min(1, Math.max(0, c.confidence)),
    score: finite(c.score) ? c.score : 0,
    pitch_semitones: finite(c.pitch_semitones) ? c.pitch_semitones : 0,
  } as Candidate;
}

/** Old links (v1) packed each candidate as a positional 8-tuple; they are still
 * read, so links already shared keep working. New links are never written this way. */
function candidateFromTuple(p: unknown): Candidate | null {
  if (!Array.isArray(p) || p.length !== 8) return null;
  const [show, season, episode, title, episode_id, offset_s, confidence, speed] = p as unknown[];
  return candidateFrom({ show, season, episode, title, episode_id, offset_s, confidence, speed });
}

function toBase64Url(value: string): string {
  const bytes = new TextEncoder().encode(value);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(value: string): string {
  const b64 = value.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  const bytes = Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
  return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
}

/** The fragment (without `#`) that carries ``result``. */
export function encodeResult(result: IdentifyResult): string {
  const candidates = result.candidates.slice(0, MAX_CANDIDATES);
  const m = result.match;
  let match = -1;
  if (m) {
    match = candidates.findIndex((c) => c.episode_id === m.episode_id && c.offset_s === m.offset_s);
    if (match < 0) {
      candidates.unshift(m);
      match = 0;
    }
  }
  const payload: Carried = {
    v: 2,
    status: result.status,
    match,
    clip_duration_s: round(result.clip_duration_s, 1),
    candidates: candidates.map(carried),
  };
  return `r=${toBase64Url(JSON.stringify(payload))}`;
}

function decodeNamed(payload: Record<string, unknown>): IdentifyResult | null {
  if (payload.v !== 2 || !Array.isArray(payload.candidates)) return null;
  const status = payload.status as Status;
  if (!STATUSES.includes(status)) return null;
  const list = payload.candidates.slice(0, MAX_CANDIDATES).map(candidateFrom);
  if (list.some((c) => c === null)) return null;
  const candidates = list as Candidate[];
  const at = payload.match;
  const match = Number.isInteger(at) && (at as number) >= 0 ? (candidates[at as number] ?? null) : null;
  if ((status !== "no_match") !== (match !== null)) return null;
  const duration = finite(payload.clip_duration_s) ? payload.clip_duration_s : 0;
  return { status, match, candidates, elapsed_ms: 0, clip_duration_s: duration };
}

function decodePositional(payload: Record<string, unknown>): IdentifyResult | null {
  if (payload.v !== 1 || !Array.isArray(payload.c)) return null;
  const status = payload.s as Status;
  if (!STATUSES.includes(status)) return null;
  const list = payload.c.slice(0, MAX_CANDIDATES).map(candidateFromTuple);
  if (list.some((c) => c === null)) return null;
  const candidates = list as Candidate[];
  const match = payload.m === 1 && candidates.length > 0 ? candidates[0] : null;
  if (status !== "no_match" && match === null) return null;
  const duration = finite(payload.d) ? payload.d : 0;
  return { status, match, candidates, elapsed_ms: 0, clip_duration_s: duration };
}

/** The result a fragment carries, or null when it carries none (or anything invalid). */
export function decodeResult(fragment: string): IdentifyResult | null {
  const value = fragment.replace(/^#/, "");
  if (!value.startsWith("r=") || value.length > MAX_FRAGMENT) return null;
  try {
    const payload: unknown = JSON.parse(fromBase64Url(value.slice(2)));
    if (typeof payload !== "object" || payload === null || Array.isArray(payload)) return null;
    const fields = payload as Record<string, unknown>;
    return fields.v === 1 ? decodePositional(fields) : decodeNamed(fields);
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
