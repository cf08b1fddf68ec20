// What is left of this visitor's quota, from GET /api/v1/me (asking spends nothing), so the
// page can say it before the server refuses.

import { useEffect, useState } from "react";
import { fetchMe } from "../api/catalogue";
import type { Me } from "../api/types";
import { wait } from "../lib/format";

function per(windowS: number): string {
  if (windowS === 3600) return "this hour";
  if (windowS === 86400) return "today";
  if (windowS === 60) return "this minute";
  return `every ${wait(windowS)}`;
}

/** ``refresh`` changes after each identification, to ask again. */
export function Quota({ refresh }: { refresh: number }) {
  const [me, setMe] = useState<Me | null>(null);
  useEffect(() => {
    const abort = new AbortController();
    fetchMe(abort.signal).then(setMe, () => undefined);
    return () => abort.abort();
  }, [refresh]);
  if (!me || me.limit === null || me.remaining === null) return null; // nothing limits it
  const text =
    me.remaining > 0
      ? `${me.remaining} of ${me.limit} identifications left ${per(me.window_s)}.`
      : `No identifications left for now: more in ${wait(me.reset_s)}.`;
  return (
    <p className="quota hint" data-testid="quota">
      {text}
    </p>
  );
}
