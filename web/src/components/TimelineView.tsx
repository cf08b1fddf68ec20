// A long input as a bar coloured by episode, the list of its segments beside it, and the
// details of the one chosen. Segments may still be arriving: the bar shows how far the
// server has read.

import { useEffect, useMemo, useRef, useState } from "react";
import type { TimelineSegment } from "../api/timeline";
import { confidenceWords, timestamp } from "../lib/format";
import { colourKey, colours, place, playbackNote, segmentLabel, shortLabel, span } from "../lib/timeline";
import "./timeline.css";

interface Props {
  segments: TimelineSegment[];
  /** The input's length, when known (else the bar ends where reading has got to). */
  totalS: number | null;
  /** How far the server has read, while it still reads. */
  doneS?: number | null;
  running?: boolean;
}

function swatch(s: TimelineSegment, palette: Map<string, string>): string | undefined {
  const key = colourKey(s);
  return key && !key.startsWith("shared:") ? palette.get(key) : undefined;
}

function Details({ s }: { s: TimelineSegment }) {
  const m = s.match;
  if (s.status === "unknown" || !m) {
    return (
      <>
        <h3 id="segment-title" tabIndex={-1}>
          Not in the library
        </h3>
        <p>
          {span(s)} of the video: no indexed episode plays here (or it is too faint under other sound to
          tell).
        </p>
      </>
    );
  }
  if (s.status === "ambiguous") {
    return (
      <>
        <h3 id="segment-title" tabIndex={-1}>
          Shared by {s.candidates.length} episodes
        </h3>
        <p>
          {span(s)} of the video is material these episodes all hold (an opening theme, credits or a recurring
          cue), so it alone cannot tell them apart:
        </p>
        <ul className="tl-candidates">
          {s.candidates.map((c) => (
            <li key={c.episode_id}>
              <span className="tl-show">{c.show}</span> {shortLabel(c)}, from{" "}
              <span className="mono">{timestamp(c.offset_s)}</span>
            </li>
          ))}
        </ul>
      </>
    );
  }
  const note = playbackNote(m);
  return (
    <>
      <p className="tl-show">{m.show}</p>
      <h3 id="segment-title" tabIndex={-1}>
        {shortLabel(m)}
      </h3>
      <p data-testid="segment-range">
        {span(s)} of the video is <span className="mono">{timestamp(m.offset_s)}</span>–
        <span className="mono">{timestamp(m.end_offset_s)}</span> of the episode.
      </p>
      {note && <p>{note}</p>}
      <p className="hint">{confidenceWords(m.confidence)}.</p>
    </>
  );
}

export function TimelineView({ segments, totalS, doneS = null, running = false }: Props) {
  const [chosen, setChosen] = useState<number | null>(null);
  const palette = useMemo(() => colours(segments), [segments]);
  const detailsHeading = useRef<HTMLDivElement>(null);
  const total = Math.max(totalS ?? 0, doneS ?? 0, segments.length ? segments[segments.length - 1].end_s : 0, 1e-9);
  const readPct = running && doneS != null ? Math.min(100, (100 * doneS) / total) : 100;
  const matched = segments.filter((s) => s.status !== "unknown");
  const selected = chosen !== null ? segments[chosen] : undefined;

  function choose(i: number, focus: boolean) {
    setChosen(i);
    if (focus) requestAnimationFrame(() => detailsHeading.current?.querySelector("h3")?.focus());
  }

  // The first match is shown as soon as there is one.
  useEffect(() => {
    if (chosen === null && matched.length > 0) setChosen(segments.indexOf(matched[0]));
  }, [chosen, matched, segments]);

  return (
    <section className="timeline" aria-labelledby="timeline-title">
      <h2 id="timeline-title">
        {running ? "Reading the video…" : `${matched.length} scene${matched.length === 1 ? "" : "s"} from the library`}
      </h2>
      <div className="tl-bar" data-testid="timeline-bar" aria-hidden="true">
        {running && <div className="tl-read" style={{ width: `${readPct}%` }} />}
        {segments.map((s, i) => {
          const { left, width } = place(s, total);
          return (
            <div
              key={`${s.start_s}-${i}`}
              className={`tl-part tl-${s.status}${i === chosen ? " tl-chosen" : ""}`}
              style={{ left: `${left}%`, width: `${width}%`, background: swatch(s, palette) }}
              title={`${span(s)} ${segmentLabel(s)}`}
              onClick={() => choose(i, false)}
            />
          );
        })}
      </div>
      <div className="tl-scale" aria-hidden="true">
        <span>{timestamp(0)}</span>
        <span>{timestamp(total)}</span>
      </div>
      <div className="tl-body">
        <ol className="tl-list" aria-label="Segments">
          {segments.map((s, i) => (
            <li key={`${s.start_s}-${i}`}>
              <button
                type="button"
                className={`tl-item${i === chosen ? " tl-chosen" : ""}`}
                aria-pressed={i === chosen}
                onClick={() => choose(i, true)}
                data-testid="segment"
              >
                <span className={`tl-swatch tl-${s.status}`} style={{ background: swatch(s, palette) }} />
                <span className="mono tl-when">{span(s)}</span>
                <span className="tl-what">{segmentLabel(s)}</span>
                {s.match && s.status === "match" && (
                  <span className="mono tl-at">@ {timestamp(s.match.offset_s)}</span>
                )}
              </button>
            </li>
          ))}
          {running && <li className="tl-pending">Still reading…</li>}
        </ol>
        <div className="card tl-details" ref={detailsHeading} aria-live="polite" data-testid="segment-details">
          {selected ? <Details s={selected} /> : <p className="hint">Choose a segment to see where it comes from.</p>}
        </div>
      </div>
    </section>
  );
}
