// Where in the episode: "10:00 of 19:47" with a bar when the episode's length is known
// (an answer's card, and the place followed while Listen follows).

import type { ReactNode } from "react";
import { percent, timestamp } from "../lib/format";

interface Props {
  /** What the time is ("The clip starts at", "Now at"). */
  lead: ReactNode;
  atS: number;
  lengthS: number | null | undefined;
  /** data-testid of the line, and of the time in it. */
  lineTestId?: string;
  timeTestId: string;
}

export function Place({ lead, atS, lengthS, lineTestId, timeTestId }: Props) {
  const at = lengthS ? Math.min(lengthS, atS) : atS;
  return (
    <div className="place">
      <p data-testid={lineTestId}>
        {lead}{" "}
        <strong className="mono big" data-testid={timeTestId}>
          {timestamp(at)}
        </strong>
        {lengthS ? (
          <>
            {" "}
            of <span className="mono">{timestamp(lengthS)}</span>
          </>
        ) : null}
      </p>
      {lengthS ? (
        <progress className="place-bar" max={lengthS} value={at} aria-label="Where in the episode">
          {percent(at / lengthS)}
        </progress>
      ) : null}
    </div>
  );
}
