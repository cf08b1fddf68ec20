// "Your last answers": kept in this browser's local storage only, and clearable.

import { useState } from "react";
import { clearHistory, type HistoryEntry } from "../lib/history";

interface Props {
  entries: HistoryEntry[];
  onCleared: () => void;
}

function when(at: number, now = Date.now()): string {
  const minutes = Math.round((now - at) / 60_000);
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  return new Date(at).toLocaleDateString();
}

export function History({ entries, onCleared }: Props) {
  const [confirming, setConfirming] = useState(false);
  if (entries.length === 0) return null;
  return (
    <section className="history" aria-labelledby="history-title">
      <h2 id="history-title">Your last answers</h2>
      <p className="hint">Kept in this browser only.</p>
      <ul>
        {entries.map((e) => (
          <li key={`${e.at}-${e.url}`}>
            <a href={e.url}>{e.label}</a> <span className="hint">· {when(e.at)}</span>
          </li>
        ))}
      </ul>
      {confirming ? (
        <p className="row">
          <button
            type="button"
            className="button"
            onClick={() => {
              clearHistory();
              setConfirming(false);
              onCleared();
            }}
          >
            Yes, clear
          </button>
          <button type="button" className="button" onClick={() => setConfirming(false)}>
            Keep
          </button>
        </p>
      ) : (
        <button type="button" className="button" onClick={() => setConfirming(true)}>
          Clear this list
        </button>
      )}
    </section>
  );
}
