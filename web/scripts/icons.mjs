// One-off: render public/icons/icon.svg to the PNG icons the manifest lists (run by hand
// after changing the SVG: node scripts/icons.mjs; the PNGs are committed).
import fs from "node:fs";
import { chromium } from "playwright-core";

const svg = fs.readFileSync("public/icons/icon.svg", "utf-8");
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium", args: ["--no-sandbox", "--headless"] });
const page = await browser.newPage();
for (const size of [192, 512]) {
  await page.setViewportSize({ width: size, height: size });
  await page.setContent(`<html><body style="margin:0">${svg.replace("<svg ", `<svg width="${size}" height="${size}" `)}</body></html>`);
  await page.screenshot({ path: `public/icons/icon-${size}.png`, omitBackground: false });
}
await browser.close();
