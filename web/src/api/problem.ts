// Everything that can go wrong with a request, as one small type the page can explain.

export type ProblemKind =
  | "too_large" // upload or download bigger than the server accepts
  | "too_long" // the clip is longer than the server decodes
  | "unsupported" // not a media file with sound
  | "unusable" // a media file, but silent, empty or damaged
  | "rate_limited"
  | "busy" // the server has more work queued than it can answer soon
  | "link_refused"
  | "download_failed"
  | "unreachable" // no answer from the server at all
  | "unavailable" // the server answered but has no library loaded
  | "microphone_denied"
  | "microphone_missing"
  | "microphone_unsupported"
  | "unknown";

export class Problem extends Error {
  constructor(
    readonly kind: ProblemKind,
    /** The server's own human message, when it sent one. */
    readonly detail: string | null = null,
    readonly options: { status?: number; code?: string; retryAfterS?: number | null } = {},
  ) {
    super(`${kind}${detail ? `: ${detail}` : ""}`);
    this.name = "Problem";
  }
}

const BY_CODE: Record<string, ProblemKind> = {
  body_too_large: "too_large",
  download_too_large: "too_large",
  media_too_long: "too_long",
  not_media: "unsupported",
  unsupported_media_type: "unsupported",
  bad_media: "unusable",
  corrupt_media: "unusable",
  empty_media: "unusable",
  silent_media: "unusable",
  rate_limited: "rate_limited",
  busy: "busy",
  url_refused: "link_refused",
  url_too_long: "link_refused",
  download_failed: "download_failed",
  fetch_failed: "download_failed",
  index_not_found: "unavailable",
  index_format: "unavailable",
  index_params_mismatch: "unavailable",
  index_error: "unavailable",
  index_locked: "unavailable",
};

const BY_STATUS: Record<number, ProblemKind> = {
  413: "too_large",
  415: "unsupported",
  429: "rate_limited",
  502: "unreachable",
  503: "unavailable",
  504: "unreachable",
};

/** The Problem for an error the server described (HTTP status, code, message). */
export function problemFrom(
  status: number,
  code: string | null,
  message: string | null,
  retryAfterS: number | null = null,
): Problem {
  const kind = (code && BY_CODE[code]) || BY_STATUS[status] || "unknown";
  return new Problem(kind, message, { status, code: code ?? undefined, retryAfterS });
}

/** Seconds from a Retry-After header (seconds or an HTTP date), or null. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const when = Date.parse(trimmed);
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - now) / 1000));
}
