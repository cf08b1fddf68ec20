// The answer: the episode and where the clip starts; for ambiguous answers the episodes
// that fit and why; for no match what to try next. With a shareable URL.

import { useEffect, useRef, useState } from "react";
import type { Candidate, IdentifyResult } from "../api/types";
import {
  ambiguityReason,
  confidenceWords,
  episodeCode,
  episodeLabel,
  percent,
  speedNote,
  timestamp,
} from "../lib/format";
import { shareUrl } from "../lib/share";

interface Props {
  result: IdentifyResult;
  /** The answer was opened from a shared link rather than just identified. */
  shared?: boolean;
  onAgain: () => void;
  onStatus: (text: string) => void;
}

function CandidateLine({ c }: { c: Candidate }) {
  return (
    <>
      <span className="cand-show">{c.show}</span>{" "}
      <span className="cand-episode">{episodeLabel(c)}</span>{" "}
      <span className="cand-meta">
        at <span className="mono">{timestamp(c.offset_s)}</span> · {percent(c.confidence)}
      </span>
    </>
  );
}

function Share({ result, onStatus }: { result: IdentifyResult; onStatus: (t: string) => void }) {
  const url = shareUrl(result);
  const field = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState(false);

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
      </div>
    </div>
  );
}

export function ResultCard({ result, shared, onAgain, onStatus }: Props) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), [result]);
  const others = result.candidates.filter(
    (c) => !(result.match && c.episode_id === result.match.episode_id && c.offset_s === result.match.offset_s),
  );

  let body;
  if (result.status === "match" && result.match) {
    const m = result.match;
    const code = episodeCode(m.season, m.episode);
    const speed = speedNote(m.speed);
    body = (
      <>
        <p className="eyebrow">{shared ? "Shared answer" : "Found it"}</p>
        <h2 ref={heading} id="result-title" tabIndex={-1} className="result-title">
          {m.show}
        </h2>
        <p className="episode-line">
          {code && <span className="badge">{code}</span>}
          {m.title && <span className="episode-title">{m.title}</span>}
        </p>
        <dl className="facts">
          <div>
            <dt>The clip starts at</dt>
            <dd className="mono big" data-testid="timestamp">
              {timestamp(m.offset_s)}
            </dd>
          </div>
          <div>
            <dt>Confidence</dt>
            <dd>
              <span className="big">{confidenceWords(m.confidence)}</span>{" "}
              <span className="hint">({percent(m.confidence)})</span>
            </dd>
          </div>
        </dl>
        {speed && <p className="hint">{speed}</p>}
        {others.length > 0 && (
          <details className="others">
            <summary>Other possibilities ({others.length})</summary>
            <ul>
              {others.map((c) => (
                <li key={`${c.episode_id}@${c.offset_s}`}>
                  <CandidateLine c={c} />
                </li>
              ))}
            </ul>
          </details>
        )}
      </>
    );
  } else if (result.status === "ambiguous") {
    const list = result.candidates.length > 0 ? result.candidates : result.match ? [result.match] : [];
    body = (
      <>
        <p className="eyebrow">{shared ? "Shared answer" : "More than one fits"}</p>
        <h2 ref={heading} id="result-title" tabIndex={-1} className="result-title">
          It could be any of {list.length} episodes
        </h2>
        <p className="why">{ambiguityReason(list)}</p>
        <ul className="candidates">
          {list.map((c) => (
            <li key={`${c.episode_id}@${c.offset_s}`}>
              <CandidateLine c={c} />
            </li>
          ))}
        </ul>
      </>
    );
  } else {
    body = (
      <>
        <p className="eyebrow">{shared ? "Shared answer" : "No match"}</p>
        <h2 ref={heading} id="result-title" tabIndex={-1} className="result-title">
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

  return (
    <section className={`card result ${result.status}`} aria-labelledby="result-title">
      {body}
      <Share result={result} onStatus={onStatus} />
      <button type="button" className="button primary" onClick={onAgain}>
        Identify another clip
      </button>
    </section>
  );
}
