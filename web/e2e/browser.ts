// Debian's Chromium, launched by playwright-core (no browser is ever downloaded), with a
// fresh profile each time; and screenshots of a state at phone and desktop width.

import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

export const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Console errors and failed requests of the page (a CSP violation shows up here). */
  errors: string[];
  close: () => Promise<void>;
}

export async function openBrowser(executablePath: string, extraArgs: string[] = []): Promise<Browser> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "citywok-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: [...ARGS, ...extraArgs],
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 1,
    colorScheme: "light",
    reducedMotion: "reduce",
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on("console", (m) => {
    // Failed identify requests (429, 422) log a network error; those are expected.
    if (m.type() === "error" && !/status of 4\d\d/.test(m.text())) errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  return {
    context,
    page,
    errors,
    close: async () => {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

export const WIDTHS = { phone: { width: 390, height: 844 }, desktop: { width: 1280, height: 800 } };

/** Check the page fits 360 px, then save `<name>-390.png` and `<name>-1280.png` of it as it is now. */
export async function screenshots(page: Page, folder: string, name: string): Promise<void> {
  const before = page.viewportSize();
  // The narrowest phone the page supports: nothing may stick out sideways.
  await page.setViewportSize({ width: 360, height: 740 });
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  if (wide > 360) throw new Error(`the ${name} state is ${wide} px wide at a 360 px viewport`);
  // The share URL names a random loopback port: show a stable address in the pictures.
  await page.evaluate(() => {
    const share = document.querySelector<HTMLInputElement>("#share-url");
    if (share) share.value = share.value.replace(window.location.origin, "https://citywok.example");
  });
  for (const [label, size] of [["390", WIDTHS.phone], ["1280", WIDTHS.desktop]] as const) {
    await page.setViewportSize(size);
    await page.screenshot({ path: path.join(folder, `${name}-${label}.png`), fullPage: true, animations: "disabled" });
  }
  if (before) await page.setViewportSize(before);
}

/** Drop a file on the page the way a desktop browser does (dragenter, dragover, drop). */
export async function dropFile(page: Page, file: string, type: string): Promise<void> {
  const data = fs.readFileSync(file).toString("base64");
  const transfer = await page.evaluateHandle(
    ({ data, name, type }) => {
      const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], name, { type }));
      return dt;
    },
    { data, name: path.basename(file), type },
  );
  const target = page.locator("main");
  await target.dispatchEvent("dragenter", { dataTransfer: transfer });
  await target.dispatchEvent("dragover", { dataTransfer: transfer });
  await page.locator(".drop-overlay").waitFor();
  await target.dispatchEvent("drop", { dataTransfer: transfer });
}

const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf-8");

/**
 * axe-core's serious and critical violations on the page as it is now ("rule: targets").
 * The engine is put in through DevTools (page.evaluate), which the page's CSP does not
 * govern, so the page's own strict CSP stays on during the check.
 */
export async function seriousA11yViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document, opts: object) => Promise<{ violations: { id: string; impact: string | null; nodes: { target: unknown[] }[] }[] }> } }).axe;
    const result = await axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, targets: v.nodes.map((n) => String(n.target[0])) }));
  });
  return violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id}: ${v.targets.slice(0, 3).join(", ")}`);
}
