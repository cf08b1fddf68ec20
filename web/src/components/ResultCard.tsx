// The answer, to act on: the episode, a still and a clip of the moment, where it falls in
// the episode ("10:00 of 19:47"), how the sound was changed, a link to watch from there,
// and a short link to share. Ambiguous answers list every episode that fits, grouped by
// show and season, with the reason the catalogue gives; no match says what to try next.

import { useEffect, useRef, useState } from "react";
import type { Candidate, IdentifyResult } from "../api/types";
import { ambiguityReason, changeNote, confidenceWords, episodeCode, episodeLabel, percent, timestamp } from "../lib/format";
import { shareUrl } from "../lib/share";
import { Place } from "./Place";

interface Props {
  result: IdentifyResult;
  /** The answer was opened from a shared link rather than just identified. */
  shared?: boolean;
  onAgain: () => void;
  onStatus: (text: string) => void;
}

/** Ambiguous lists show this many rows, then "+N more". */
export const SHOWN_AT_FIRST = 8;

function Share({ result, onStatus }: { result: IdentifyResult; onStatus: (t: string) => void }) {
  const url = result.share_url ?? shareUrl(result);
  const field = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState(false);
  const canShare = typeof navigator !== "undefined" && typeof navigator.share === "function";

  async function copy() {
    let ok = false;
    try {
      await navigator.clipboard.writeText(url);
      ok = true;
    } catch {
      field.current?.select();
      try {
        ok = document.execCommand("copy");
      } catch {
        ok = false;
      }
    }
    setCopied(ok);
    onStatus(ok ? "Link copied." : "Select the link and copy it.");
  }

  return (
    <div className="share">
      <label htmlFor="share-url">Link to this answer</label>
      <div className="row">
        <input id="share-url" ref={field} readOnly value={url} onFocus={(e) => e.currentTarget.select()} />
        <button type="button" className="button" onClick={copy}>
          {copied ? "Copied" : "Copy link"}
        </button>
        {canShare && (
          <button type="button" className="button" onClick={() => navigator.share({ url, title: "CityWok" }).catch(() => undefined)}>
            Share…
          </button>
        )}
      </div>
    </div>
  );
}

/** The still of the moment, and the scene itself on request (muted, inline). */
function Moment({ c }: { c: Candidate }) {
  const [playing, setPlaying] = useState(false);
  const [broken, setBroken] = useState(false);
  if (!c.preview_image || broken) return null;
  const at = timestamp(c.offset_s);
  return (
    <figure className="moment">
      {playing && c.preview_video ? (
        <video
          className="moment-media"
          src={`${c.preview_video}?size=medium`}
          poster={`${c.preview_image}?size=medium`}
          muted
          autoPlay
          loop
          playsInline
          controls
          aria-label={`The scene from ${at}, muted`}
          data-testid="preview-video"
        />
      ) : (
        <img
          className="moment-media"
          src={`${c.preview_image}?size=medium`}
          alt={`The episode at ${at}`}
          width={640}
          height={360}
          onError={() => setBroken(true)}
          data-testid="preview-image"
        />
      )}
      {c.preview_video && !playing && (
        <button type="button" className="button play" onClick={() => setPlaying(true)}>
          <span aria-hidden="true">▶</span> Play the scene
        </button>
      )}
    </figure>
  );
}

function Matched({ result, shared }: { result: IdentifyResult; shared?: boolean }) {
  const m = result.match!;
  const code = episodeCode(m.season, m.episode);
  const change = changeNote(m.speed, m.pitch_semitones);
  const others = result.candidates.filter((c) => !(c.episode_id === m.episode_id && c.offset_s === m.offset_s));
  return (
    <>
      <p className="eyebrow">{shared ? "Shared answer" : "Found it"}</p>
      <h2 id="result-title" tabIndex={-1} className="result-title">
        {m.show}
      </h2>
      <p className="episode-line">
        {code && <span className="badge">{code}</span>}
        {m.title && <span className="episode-title">{m.title}</span>}
      </p>
      <Moment c={m} />
      <Place lead="The clip starts at" atS={m.offset_s} lengthS={m.episode_duration_s} timeTestId="timestamp" />
      <p className="confidence">
        <span className="big">{confidenceWords(m.confidence)}</span> <span className="hint">({percent(m.confidence)} confidence)</span>
        {m.decided_by && (
          <span className="hint" data-testid="decided-by">
            {" "}
            · decided by {m.decided_by === "both" ? "sound and picture" : `the ${m.decided_by}`}
          </span>
        )}
      </p>
      {change && <p className="hint">{change}</p>}
      {m.watch_url && (
        <p>
          <a className="button watch" href={m.watch_url} target="_blank" rel="noopener noreferrer" data-testid="watch-link">
            Watch from {timestamp(m.offset_s)}
          </a>
        </p>
      )}
      {others.length > 0 && (
        <details className="others">
          <summary>Other possibilities ({others.length})</summary>
          <ul>
            {others.map((c) => (
              <li key={`${c.episode_id}@${c.offset_s}`}>
                <span className="cand-show">{c.show}</span> <span className="cand-episode">{episodeLabel(c)}</span>{" "}
                <span className="cand-meta">
                  at <span className="mono">{timestamp(c.offset_s)}</span> · {percent(c.confidence)}
                </span>
              </li>
            ))}
          </ul>
        </details>
      )}
    </>
  );
}

interface Group {
  title: string;
  items: Candidate[];
}

function groups(list: Candidate[]): Group[] {
  const out = new Map<string, Group>();
  for (const c of list) {
    const title = c.season !== null ? `${c.show}, season ${c.season}` : c.show;
    const g = out.get(title) ?? { title, items: [] };
    g.items.push(c);
    out.set(title, g);
  }
  return [...out.values()].map((g) => ({ ...g, items: [...g.items].sort((a, b) => (a.episode ?? 0) - (b.episode ?? 0)) }));
}

function Ambiguous({ result, shared }: { result: IdentifyResult; shared?: boolean }) {
  const [all, setAll] = useState(false);
  const list = result.candidates.length > 0 ? result.candidates : result.match ? [result.match] : [];
  const sorted = groups(list).flatMap((g) => g.items);
  const shown = all ? sorted : sorted.slice(0, SHOWN_AT_FIRST);
  const more = sorted.length - shown.length;
  return (
    <>
      <p className="eyebrow">{shared ? "Shared answer" : "More than one fits"}</p>
      <h2 id="result-title" tabIndex={-1} className="result-title">
        It could be any of {list.length} episodes
      </h2>
      {result.disagreement ? (
        <p className="why" data-testid="disagreement">
          The sound and the pictures disagree: the sound names{" "}
          {episodeLabel(result.disagreement.sound) || result.disagreement.sound.episode_id} at{" "}
          <span className="mono">{timestamp(result.disagreement.sound.offset_s)}</span>, the pictures name{" "}
          {episodeLabel(result.disagreement.picture) || result.disagreement.picture.episode_id} at{" "}
          <span className="mono">{timestamp(result.disagreement.picture.offset_s)}</span>.
        </p>
      ) : (
        <p className="why">{ambiguityReason(result.shared, list.length)}</p>
      )}
      {groups(shown).map((g) => (
        <div key={g.title} className="cand-group">
          <h3>{g.title}</h3>
          <ul className="candidates">
            {g.items.map((c) => (
              <li key={`${c.episode_id}@${c.offset_s}`}>
                <span className="cand-episode">{episodeLabel(c) || c.episode_id}</span>{" "}
                <span className="cand-meta">
                  at <span className="mono">{timestamp(c.offset_s)}</span>
                </span>
              </li>
            ))}
          </ul>
        </div>
      ))}
      {more > 0 && (
        <button type="button" className="button more" onClick={() => setAll(true)}>
          +{more} more
        </button>
      )}
    </>
  );
}

function NoMatch({ shared }: { shared?: boolean }) {
  return (
    <>
      <p className="eyebrow">{shared ? "Shared answer" : "No match"}</p>
      <h2 id="result-title" tabIndex={-1} className="result-title">
        This clip isn't in the library
      </h2>
      <p>What to try next:</p>
      <ul className="tips">
        <li>A longer clip: 10 to 20 seconds of the scene.</li>
        <li>A moment with dialogue rather than only music or crowd noise.</li>
        <li>The original sound: clips with music or a voice-over added on top are harder.</li>
        <li>Check below that the show is in the library at all.</li>
      </ul>
    </>
  );
}

export function ResultCard({ result, shared, onAgain, onStatus }: Props) {
  const card = useRef<HTMLElement>(null);
  useEffect(() => card.current?.querySelector<HTMLElement>("#result-title")?.focus(), [result]);
  const body =
    result.status === "match" && result.match ? (
      <Matched result={result} shared={shared} />
    ) : result.status === "ambiguous" ? (
      <Ambiguous result={result} shared={shared} />
    ) : (
      <NoMatch shared={shared} />
    );
  return (
    <section ref={card} className={`card result ${result.status}`} aria-labelledby="result-title">
      {body}
      <Share result={result} onStatus={onStatus} />
      <button type="button" className="button primary" onClick={onAgain}>
        Identify another clip
      </button>
    </section>
  );
}
