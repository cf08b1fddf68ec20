// Following the episode after Listen's answer: the episode and where it is now
// ("S01E02, now at 10:07 of 22:00"), kept current by the server's live tracker; a pause,
// a lost scene, a jump or another episode said plainly; and one clear Stop.

import { forwardRef } from "react";
import type { Candidate } from "../api/types";
import { episodeCode } from "../lib/format";
import type { FollowState } from "../lib/follow";
import { Place } from "./Place";
import { SoundLevel } from "./SoundLevel";

interface Props {
  state: FollowState;
  /** The microphone's level, 0-1 (shows that it still hears). */
  level: number;
  onStop: () => void;
}

const EYEBROW = { playing: "Following live", paused: "Paused", lost: "Lost it" } as const;
const WHERE = { playing: "Now at", paused: "Paused at", lost: "Last heard at" } as const;
const NOTE = {
  playing: "The position moves on as the episode plays.",
  paused: "The sound went quiet. Waiting for it to come back.",
  lost: "Something else is playing, or it jumped. Listening for where it went.",
} as const;

function Shared({ candidates }: { candidates: Candidate[] }) {
  const codes = candidates.map((c) => episodeCode(c.season, c.episode) || c.title || c.show);
  return (
    <p className="hint" data-testid="follow-shared">
      One of {candidates.length} episodes that share this part ({codes.join(", ")}). It says which as soon as it hears.
    </p>
  );
}

export const Following = forwardRef<HTMLButtonElement, Props>(function Following({ state, level, onStop }, stopRef) {
  const { place, phase } = state;
  const code = episodeCode(place.season, place.episode);
  return (
    <section className={`following following-${phase}`} aria-labelledby="following-title" data-testid="following">
      <p className="eyebrow follow-phase" data-testid="follow-phase">
        <span className="live-dot" aria-hidden="true" /> {EYEBROW[phase]}
      </p>
      <h2 id="following-title" tabIndex={-1} className="result-title">
        {place.show}
      </h2>
      {state.status === "ambiguous" && state.candidates.length > 1 ? (
        <Shared candidates={state.candidates} />
      ) : (
        <p className="episode-line">
          {code && <span className="badge">{code}</span>}
          {place.title && <span className="episode-title">{place.title}</span>}
        </p>
      )}
      <Place lead={WHERE[phase]} atS={place.offset_s} lengthS={place.episode_duration_s} lineTestId="follow-where" timeTestId="follow-position" />
      <p className="hint" data-testid="follow-note">
        {NOTE[phase]}
      </p>
      {state.changes.length > 0 && (
        <div className="follow-changes">
          <h3>What changed</h3>
          <ul className="follow-log" data-testid="follow-log">
            {state.changes.map((text, n) => (
              <li key={`${state.changes.length - n}`}>{text}</li>
            ))}
          </ul>
        </div>
      )}
      <SoundLevel level={level} />
      <div className="row">
        <button ref={stopRef} type="button" className="button primary" onClick={onStop}>
          Stop
        </button>
      </div>
    </section>
  );
});
