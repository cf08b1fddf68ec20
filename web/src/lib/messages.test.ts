import { describe, expect, it } from "vitest";
import { Problem, type ProblemKind } from "../api/problem";
import { describeProblem } from "./messages";

const KINDS: ProblemKind[] = [
  "too_large", "too_long", "unsupported", "unusable", "rate_limited", "link_refused", "download_failed",
  "unreachable", "unavailable", "microphone_denied", "microphone_missing", "microphone_unsupported", "unknown",
];

describe("describeProblem", () => {
  it.each(KINDS)("words %s for people, with no code or JSON", (kind) => {
    const m = describeProblem(new Problem(kind, null, { code: "some_code" }));
    expect(m.title.length).toBeGreaterThan(5);
    expect(m.body.length).toBeGreaterThan(20);
    expect(`${m.title} ${m.body}`).not.toMatch(/[{}_]|some_code/);
  });

  it("gives the wait of a rate limit", () => {
    const m = describeProblem(new Problem("rate_limited", null, { retryAfterS: 90 }));
    expect(m.body).toContain("Try again in 2 minutes");
  });
});
