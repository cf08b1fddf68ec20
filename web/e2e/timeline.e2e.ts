// The timeline of a long video in real Chromium against the real server: segments appear,
// the bar is coloured by episode, a click shows where a segment comes from.

import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { openBrowser, screenshots, seriousA11yViolations, type Browser } from "./browser";

const fx = inject("fixtures");
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const PYTHON = process.env.CITYWOK_PYTHON ?? path.join(ROOT, ".venv/bin/python");

// Episode 1 from 10 s (9 s), speech that is in no library (6 s), episode 3 from 12 s (10 s),
// as a video file.
const MAKE = String.raw`
import json, sys
from pathlib import Path
import numpy as np
from citywok.cli.demo import RATE_HZ, encode, speech
root = Path(sys.argv[1])
lib = root / "library"
truth = json.loads((lib / "truth.json").read_text())
raw = [np.load(lib / t["raw"]) for t in truth]
words = speech("nobody here ever watches television on a quiet sunday afternoon", voice="en-us")
t = np.arange(6 * RATE_HZ) / RATE_HZ
other = 0.1 * np.sin(2 * np.pi * (170 + 60 * np.sin(2.3 * t)) * t)
other[: min(len(words), len(other))] += 0.5 * words[: len(other)]
x = np.concatenate([raw[0][10 * RATE_HZ:19 * RATE_HZ], other, raw[2][12 * RATE_HZ:22 * RATE_HZ]]).astype(np.float32)
p = encode(x, root / "compilation.mp4", audio_args=("-c:a", "aac", "-b:a", "96k"), video=True)
print(json.dumps({"path": str(p), "titles": [t["title"] for t in truth]}))
`;

describe("the timeline page", () => {
  let b: Browser;
  let made: { path: string; titles: string[] };

  beforeAll(async () => {
    const out = spawnSync(PYTHON, ["-c", MAKE, fx.tmp], { encoding: "utf-8" });
    if (out.status !== 0) throw new Error(out.stderr);
    made = JSON.parse(out.stdout.trim().split("\n").pop() ?? "{}");
    b = await openBrowser(fx.chromium);
  });
  afterAll(async () => {
    await b?.close();
  });
  afterEach(() => {
    expect(b.errors, "console errors (CSP violations included)").toEqual([]);
    b.errors.length = 0;
  });

  it("names every scene of a long video, and shows where one comes from", async () => {
    await b.page.goto(fx.baseUrl + "/?mode=timeline");
    await b.page.getByRole("heading", { name: "Timeline of a long video" }).waitFor();
    expect(await seriousA11yViolations(b.page), "axe, picking").toEqual([]);
    await b.page.getByTestId("timeline-file-input").setInputFiles(made.path);
    await b.page.getByRole("heading", { name: "2 scenes from the library" }).waitFor({ timeout: 30_000 });
    const rows = await b.page.getByTestId("segment").allTextContents();
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatch(new RegExp(`^00:00–00:0\\dS01E01 ${made.titles[0]}@ 00:1\\d$`));
    expect(rows[1]).toMatch(/Not in the library$/);
    expect(rows[2]).toContain(`S01E03 ${made.titles[2]}`);
    const parts = b.page.getByTestId("timeline-bar").locator(".tl-part");
    expect(await parts.count()).toBe(3);
    const colours = await parts.evaluateAll((els) => els.map((e) => getComputedStyle(e).backgroundColor));
    expect(colours[0]).not.toBe(colours[2]);
    await b.page.getByTestId("segment").nth(2).click();
    const details = b.page.getByTestId("segment-details");
    expect(await details.locator("h3").textContent()).toBe(`S01E03 ${made.titles[2]}`);
    expect(await details.getByTestId("segment-range").textContent()).toMatch(/ of the video is 00:1[12]–00:2[12] of the episode\.$/);
    expect(await seriousA11yViolations(b.page), "axe, the timeline").toEqual([]);
    await screenshots(b.page, fx.screenshots, "timeline");
  });
});
