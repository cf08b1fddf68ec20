// An error, in words: what happened and what to do. Never a code or raw JSON.

import { useEffect, useRef } from "react";
import type { Problem } from "../api/problem";
import { describeProblem } from "../lib/messages";

interface Props {
  problem: Problem;
  onDismiss: () => void;
}

export function ProblemMessage({ problem, onDismiss }: Props) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), [problem]);
  const message = describeProblem(problem);
  return (
    <section className="card problem" aria-labelledby="problem-title" data-kind={problem.kind}>
      <h2 id="problem-title" ref={heading} tabIndex={-1}>
        {message.title}
      </h2>
      <p>{message.body}</p>
      {message.detail && <p className="hint">Server said: “{message.detail}”</p>}
      <button type="button" className="button" onClick={onDismiss}>
        OK
      </button>
    </section>
  );
}
