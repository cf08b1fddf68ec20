// The page in real Chromium against a real `citywok serve` with a generated library.

import fs from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { dropFile, openBrowser, screenshots, type Browser } from "./browser";

const fx = inject("fixtures");
const shots = fx.screenshots;

function mmss(seconds: number): string {
  const s = Math.floor(seconds);
  return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

/** Whether the page shows ``seconds`` give or take one second. */
function nearTimestamp(text: string, seconds: number): boolean {
  return [seconds - 1, seconds, seconds + 1].some((s) => text.trim() === mmss(s));
}

describe("the page", () => {
  let b: Browser;

  beforeAll(async () => {
    b = await openBrowser(fx.chromium);
  });
  afterAll(async () => {
    await b?.close();
  });
  afterEach(() => {
    expect(b.errors, "console errors (CSP violations included)").toEqual([]);
    b.errors.length = 0;
  });

  it("is served at / with the strict headers, and shows the library", async () => {
    const response = await b.page.goto(fx.baseUrl + "/");
    const headers = response!.headers();
    expect(headers["content-security-policy"]).toContain("script-src 'self'");
    expect(headers["content-security-policy"]).not.toContain("unsafe-inline");
    expect(headers["permissions-policy"]).toContain("microphone=(self)");
    await expect.poll(() => b.page.getByTestId("library-summary").textContent()).toContain("3 episodes of 1 show");
    await b.page.getByText("Show the episodes").click();
    await b.page.getByText(fx.clips.match.title).waitFor();
    await b.page.getByText("Show the episodes").click();
    await screenshots(b.page, shots, "empty");
  });

  it("identifies a dropped clip: the right episode and timestamp", async () => {
    await b.page.goto(fx.baseUrl + "/");
    await dropFile(b.page, fx.clips.match.path, "video/mp4");
    const heading = b.page.locator("#result-title");
    await heading.waitFor({ timeout: 30_000 });
    expect(await heading.textContent()).toBe("Demo Show");
    await expect.poll(() => b.page.evaluate(() => document.activeElement?.id)).toBe("result-title");
    expect(await b.page.locator(".badge").textContent()).toBe("S01E02");
    expect(await b.page.locator(".episode-title").textContent()).toBe(fx.clips.match.title);
    const ts = (await b.page.getByTestId("timestamp").textContent()) ?? "";
    expect(nearTimestamp(ts, fx.clips.match.offsetS), `timestamp ${ts}`).toBe(true);
    expect(await b.page.locator(".facts").textContent()).toMatch(/Very sure|Fairly sure/);
    expect(b.page.url()).toMatch(/#r=[A-Za-z0-9_-]+$/);
    await screenshots(b.page, shots, "match");
    await b.page.setViewportSize({ width: 390, height: 844 });
    await b.page.emulateMedia({ colorScheme: "dark" });
    await b.page.screenshot({ path: `${shots}/match-dark-390.png`, fullPage: true });
    await b.page.emulateMedia({ colorScheme: "light" });

    // The shared URL shows the same answer in a fresh tab, with no request to identify.
    const shared = await b.context.newPage();
    await shared.goto(b.page.url());
    await shared.getByText("Shared answer").waitFor();
    expect(await shared.locator(".badge").textContent()).toBe("S01E02");
    await shared.close();
  });

  it("identifies a pasted link", async () => {
    await b.page.goto(fx.baseUrl + "/");
    await b.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: fx.baseUrl });
    await b.page.evaluate((url) => navigator.clipboard.writeText(url), fx.clips.link.url);
    await b.page.locator("h1").click();
    await b.page.keyboard.press("Control+V");
    await b.page.locator("#result-title").waitFor({ timeout: 45_000 });
    expect(await b.page.locator(".badge").textContent()).toBe("S01E03");
    const ts = (await b.page.getByTestId("timestamp").textContent()) ?? "";
    expect(nearTimestamp(ts, fx.clips.link.offsetS), `timestamp ${ts}`).toBe(true);
  });

  it("says so when several episodes fit (the opening theme)", async () => {
    await b.page.goto(fx.baseUrl + "/");
    await b.page.getByTestId("file-input").setInputFiles(fx.clips.ambiguous.path);
    await b.page.getByText(/It could be any of 3 episodes/).waitFor({ timeout: 30_000 });
    expect(await b.page.locator(".why").textContent()).toContain("opening theme");
    expect(await b.page.locator(".candidates li").count()).toBe(3);
    await screenshots(b.page, shots, "ambiguous");
  });

  it("says what to try next when nothing matches", async () => {
    await b.page.goto(fx.baseUrl + "/");
    await b.page.getByTestId("file-input").setInputFiles(fx.clips.noMatch.path);
    await b.page.getByText("This clip isn't in the library").waitFor({ timeout: 30_000 });
    expect(await b.page.locator(".tips li").count()).toBeGreaterThan(1);
    await screenshots(b.page, shots, "no-match");
  });

  it("shows live progress and really cancels", async () => {
    await b.page.goto(fx.baseUrl + "/");
    await b.page.locator("#link").fill(fx.clips.slowLink);
    await b.page.getByRole("button", { name: "Identify link" }).click();
    const current = b.page.locator(".step.current");
    await expect.poll(() => current.textContent(), { timeout: 30_000 }).toMatch(/Downloading the video \([1-9]\d* %\)/);
    expect(await b.page.getByTestId("live").textContent()).toContain("Downloading");
    await expect.poll(() => b.page.evaluate(() => document.activeElement?.textContent)).toBe("Cancel");
    await screenshots(b.page, shots, "progress");
    const before = ((await (await fetch(fx.mediaUrl + "/_disconnects")).json()) as string[]).length;
    await b.page.getByRole("button", { name: "Cancel" }).click();
    await b.page.getByTestId("notice").getByText("Cancelled").waitFor();
    // The server dropped the download: the media server saw the connection go.
    await expect
      .poll(async () => ((await (await fetch(fx.mediaUrl + "/_disconnects")).json()) as string[]).length, {
        timeout: 15_000,
      })
      .toBeGreaterThan(before);
    await expect.poll(() => b.page.evaluate(() => document.activeElement?.textContent)).toBe("Choose a file");
  });

  it("works from the keyboard alone, and explains a refused link in words", async () => {
    await b.page.goto(fx.baseUrl + "/");
    const focused = () => b.page.evaluate(() => document.activeElement?.id || document.activeElement?.textContent);
    for (let i = 0; i < 6 && (await focused()) !== "link"; i++) await b.page.keyboard.press("Tab");
    expect(await focused()).toBe("link");
    await b.page.keyboard.type("https://example.com/video.mp4");
    await b.page.keyboard.press("Enter");
    await b.page.locator("#problem-title").waitFor();
    expect(await b.page.locator("#problem-title").textContent()).toBe("That link can't be used");
    expect(await b.page.locator(".problem").textContent()).not.toMatch(/[{}]|url_refused/);
    expect(await focused()).toBe("problem-title");
    await b.page.keyboard.press("Tab");
    expect(await focused()).toBe("OK");
    await b.page.keyboard.press("Enter");
    expect(await focused()).toBe("Choose a file");
  });

  it("says a file is too big", async () => {
    const big = path.join(fx.tmp, "big.mp4");
    fs.writeFileSync(big, Buffer.alloc(3_000_000, 7));
    await b.page.goto(fx.limitedUrl + "/");
    await b.page.getByTestId("file-input").setInputFiles(big);
    await b.page.locator("#problem-title").waitFor({ timeout: 30_000 });
    expect(await b.page.locator("#problem-title").textContent()).toBe("That file is too big");
    b.errors.length = 0; // the browser logs the refused upload itself
  });

  it("says how long to wait when rate limited", async () => {
    await b.page.goto(fx.limitedUrl + "/");
    await b.page.getByTestId("file-input").setInputFiles(fx.clips.match.path);
    await b.page.locator("#result-title").waitFor({ timeout: 30_000 });
    await b.page.getByRole("button", { name: "Identify another clip" }).click();
    await b.page.getByTestId("file-input").setInputFiles(fx.clips.match.path);
    await b.page.locator("#problem-title").waitFor({ timeout: 30_000 });
    expect(await b.page.locator("#problem-title").textContent()).toBe("Too many clips for now");
    expect(await b.page.locator(".problem").textContent()).toMatch(/Try again in (\d+ minutes|about an hour)/);
    await expect.poll(() => b.page.evaluate(() => document.activeElement?.id)).toBe("problem-title");
    await screenshots(b.page, shots, "error");
  });
});

describe("listening", () => {
  let b: Browser;

  beforeAll(async () => {
    b = await openBrowser(fx.chromium, [
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      `--use-file-for-fake-audio-capture=${fx.clips.mic.wav}`,
    ]);
    await b.context.grantPermissions(["microphone"], { origin: fx.baseUrl });
  });
  afterAll(async () => {
    await b?.close();
  });

  it("records from the microphone and identifies the episode", async () => {
    await b.page.goto(fx.baseUrl + "/");
    await b.page.getByRole("button", { name: "Listen" }).click();
    await b.page.getByText("Listening…").waitFor();
    expect(await b.page.locator("meter").count()).toBe(1);
    await expect.poll(() => b.page.locator("meter").evaluate((m: HTMLMeterElement) => m.value), { timeout: 5_000 }).toBeGreaterThan(0);
    const identifyNow = b.page.getByRole("button", { name: "Identify now" });
    await expect.poll(() => identifyNow.isEnabled(), { timeout: 10_000 }).toBe(true);
    await b.page.waitForTimeout(1500); // a little past the minimum
    await identifyNow.click();
    await b.page.locator("#result-title").waitFor({ timeout: 30_000 });
    expect(await b.page.locator(".badge").textContent()).toBe("S01E02");
    const ts = (await b.page.getByTestId("timestamp").textContent()) ?? "";
    const [m, s] = ts.split(":").map(Number);
    const at = m * 60 + s;
    expect(at).toBeGreaterThanOrEqual(fx.clips.mic.offsetS - 1);
    expect(at).toBeLessThanOrEqual(fx.clips.mic.offsetS + fx.clips.mic.lengthS);
    expect(b.errors).toEqual([]);
  });
});
