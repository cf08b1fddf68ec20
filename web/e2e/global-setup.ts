// Once per e2e run: generate a small library with known ground truth, index it, serve
// clips over a loopback HTTP server, and start two real `citywok serve` processes (one
// with generous limits and loopback links allowed, one with a tiny anonymous limit).

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const PYTHON = process.env.CITYWOK_PYTHON ?? path.join(ROOT, ".venv/bin/python");
const STATIC = path.join(ROOT, "src/citywok/web/static/index.html");

export interface Fixtures {
  tmp: string;
  chromium: string;
  baseUrl: string;
  /** 1 identification an hour, uploads up to 1 MB. */
  limitedUrl: string;
  mediaUrl: string;
  clips: {
    match: { path: string; episodeId: string; offsetS: number; title: string };
    link: { url: string; episodeId: string; offsetS: number };
    slowLink: string;
    ambiguous: { path: string };
    noMatch: { path: string };
    mic: { wav: string; episodeId: string; offsetS: number; lengthS: number };
    micRoom: { wav: string; episodeId: string; offsetS: number; lengthS: number; rt60S: number };
    bigUpload: { path: string };
  };
  screenshots: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    fixtures: Fixtures;
  }
}

// Writes the library, the index and the clips; prints what each clip is.
const MAKE = String.raw`
import json, subprocess, sys
from pathlib import Path
import numpy as np
from citywok.analysis.decode import ffmpeg_binary
from citywok.cli.demo import RATE_HZ, encode, make_library, speech

root = Path(sys.argv[1])
lib = root / "library"
make_library(lib, episodes=3, seconds=30)
truth = json.loads((lib / "truth.json").read_text())
raw = [np.load(lib / t["raw"]) for t in truth]

# S01E02 becomes a video (ffmpeg's test card over its sound), so its answers have a still
# and a scene to play; the sidecar gives the show's watch URL.
old = lib / truth[1]["file"]
video = old.with_suffix(".mp4")
subprocess.run([ffmpeg_binary(), "-nostdin", "-y", "-loglevel", "error", "-f", "f32le", "-ar", str(RATE_HZ),
                "-ac", "1", "-i", "pipe:0", "-f", "lavfi", "-i", "testsrc=s=320x180:r=10:d=30",
                "-map", "1:v", "-map", "0:a", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
                "-shortest", str(video)], input=raw[1].astype(np.float32).tobytes(), check=True)
old.unlink()
(lib / "citywok.csv").write_text("file,show,watch_url\n,Demo Show,https://tv.example/demo/s{season}e{episode}?t={t}\n")

def cut(ep, start, length):
    return raw[ep][int(start * RATE_HZ):int((start + length) * RATE_HZ)]

out = {}
p = encode(cut(1, 12.0, 6.0), root / "scene.mp4", audio_args=("-c:a", "aac", "-b:a", "96k"), video=True)
out["match"] = {"path": str(p), "episodeId": "demo-show-s01e02", "offsetS": 12.0, "title": truth[1]["title"]}
p = encode(cut(2, 15.0, 6.0), root / "link.mp3", audio_args=("-c:a", "libmp3lame", "-b:a", "96k"))
out["link"] = {"path": str(p), "episodeId": "demo-show-s01e03", "offsetS": 15.0}
p = encode(cut(0, 1.0, 6.0), root / "theme.mp3", audio_args=("-c:a", "libmp3lame", "-b:a", "96k"))
out["ambiguous"] = {"path": str(p)}
other = speech("nobody here ever watches television on a quiet sunday afternoon, said the neighbour", voice="en-us")
p = encode(other, root / "other.mp3", audio_args=("-c:a", "libmp3lame", "-b:a", "96k"))
out["noMatch"] = {"path": str(p)}
# Chromium's fake microphone plays this over and over: 8 s, then a jump back to its start.
p = encode(cut(1, 14.0, 8.0), root / "mic.wav", audio_args=("-c:a", "pcm_s16le", "-ar", "48000", "-ac", "1"))
out["mic"] = {"wav": str(p), "episodeId": "demo-show-s01e02", "offsetS": 14.0, "lengthS": 8.0}
# The same scene as a phone hears it across a living room: an image-source room
# (pyroomacoustics, RT60 about 0.5 s, the phone 2 m from the TV) and ambient noise 15 dB
# below the TV's sound.
import pyroomacoustics as pra
dims = [5.0, 4.0, 2.7]
absorption, order = pra.inverse_sabine(0.5, dims)
room = pra.ShoeBox(dims, fs=RATE_HZ, materials=pra.Material(absorption), max_order=min(order, 25))
room.add_source([1.2, 2.0, 1.1])
room.add_microphone([3.2, 2.0, 1.1])
room.compute_rir()
dry = cut(1, 14.0, 8.0).astype(np.float64)
wet = np.convolve(dry, room.rir[0][0])[: len(dry)]
noise = np.random.default_rng(5).normal(size=len(wet))
noise *= np.sqrt(np.mean(wet**2) / np.mean(noise**2)) * 10 ** (-15 / 20)
heard = wet + noise
heard = (heard / np.abs(heard).max() * 0.5).astype(np.float32)
p = encode(heard, root / "mic-room.wav", audio_args=("-c:a", "pcm_s16le", "-ar", "48000", "-ac", "1"))
out["micRoom"] = {"wav": str(p), "episodeId": "demo-show-s01e02", "offsetS": 14.0, "lengthS": 8.0, "rt60S": 0.5}
# A larger upload (about 1.3 MB), to watch its percent move.
p = encode(cut(2, 2.0, 14.0), root / "big-upload.wav", audio_args=("-c:a", "pcm_s16le", "-ar", "48000", "-ac", "1"))
out["bigUpload"] = {"path": str(p)}
print(json.dumps(out))
`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  const res = spawnSync(cmd, args, { cwd: ROOT, env, encoding: "utf-8", maxBuffer: 1 << 24 });
  if (res.status !== 0) {
    throw new Error(`${cmd} ${args.slice(0, 2).join(" ")} failed (${res.status}):\n${res.stderr}\n${res.stdout}`);
  }
  return res.stdout;
}

/** A loopback media server: /clip.mp3 whole, /slow.mp3 dripping (for progress and cancel). */
function mediaServer(files: Record<string, Buffer>, disconnects: string[]): http.Server {
  return http.createServer((req, res) => {
    const url = (req.url ?? "/").split("?")[0];
    if (url === "/_disconnects") {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify(disconnects));
      return;
    }
    if (url === "/slow.mp3") {
      const body = files["/clip.mp3"];
      const total = body.length * 40;
      res.writeHead(200, { "Content-Type": "audio/mpeg", "Content-Length": String(total) });
      if (req.method === "HEAD") {
        res.end();
        return;
      }
      let sent = 0;
      const timer = setInterval(() => {
        const chunk = Buffer.alloc(4096);
        body.copy(chunk, 0, sent % body.length);
        res.write(chunk);
        sent += chunk.length;
        if (sent >= total - 4096) {
          clearInterval(timer);
          res.end();
        }
      }, 100);
      res.on("close", () => {
        clearInterval(timer);
        if (sent < total - 4096) disconnects.push(url);
      });
      return;
    }
    const found = files[url];
    if (!found) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "Content-Type": "audio/mpeg", "Content-Length": String(found.length) });
    res.end(req.method === "HEAD" ? undefined : found);
  });
}

async function startServer(name: string, tmp: string, env: Record<string, string>): Promise<{ url: string; proc: ChildProcess }> {
  const port = await freePort();
  const work = path.join(tmp, name);
  fs.mkdirSync(work, { recursive: true });
  const log = fs.openSync(path.join(work, "server.log"), "w");
  const proc = spawn(
    path.join(path.dirname(PYTHON), "citywok"),
    ["serve", "--host", "127.0.0.1", "--port", String(port), "--index", path.join(tmp, "index")],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        CITYWOK_KEYS_DB: path.join(work, "keys.sqlite"),
        CITYWOK_SHARES_DB: path.join(work, "shares.sqlite"),
        CITYWOK_PREVIEW_CACHE_DIR: path.join(work, "previews"),
        CITYWOK_TEMP_DIR: path.join(work, "work"),
        CITYWOK_ANONYMOUS_RATE_LIMIT: "1000/hour",
        CITYWOK_SSE_HEARTBEAT_S: "1",
        CITYWOK_LOG_LEVEL: "warning",
        ...env,
      },
      stdio: ["ignore", log, log],
      detached: true,
    },
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.ok) break;
    } catch {
      // not yet
    }
    if (proc.exitCode !== null || Date.now() > deadline) {
      throw new Error(`citywok serve (${name}) did not start:\n${fs.readFileSync(path.join(work, "server.log"), "utf-8").slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  return { url, proc };
}

function stop(proc: ChildProcess) {
  if (proc.pid && proc.exitCode === null) {
    try {
      process.kill(-proc.pid, "SIGTERM");
    } catch {
      // already gone
    }
  }
}

export default async function setup(project: TestProject) {
  const chromium = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
  if (!fs.existsSync(chromium)) throw new Error(`${chromium} is missing: apt-get install chromium (scripts/test-web does)`);
  if (!fs.existsSync(STATIC)) throw new Error("the page is not built: run scripts/build-web first");
  if (!fs.existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: run scripts/setup first`);

  const started = Date.now();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "citywok-e2e-"));
  const made = JSON.parse(run(PYTHON, ["-c", MAKE, tmp]).trim().split("\n").pop() ?? "{}");
  run(path.join(path.dirname(PYTHON), "citywok"), ["index", path.join(tmp, "library"), "--index", path.join(tmp, "index")]);

  const disconnects: string[] = [];
  const media = mediaServer({ "/clip.mp3": fs.readFileSync(made.link.path) }, disconnects);
  await new Promise<void>((resolve) => media.listen(0, "127.0.0.1", resolve));
  const mediaPort = (media.address() as net.AddressInfo).port;
  const mediaUrl = `http://127.0.0.1:${mediaPort}`;

  const links = {
    CITYWOK_FETCH_ALLOW_LOOPBACK: "true",
    CITYWOK_ALLOWED_HOSTS: "127.0.0.1",
    CITYWOK_ALLOWED_PORTS: String(mediaPort),
  };
  const servers = await Promise.all([
    startServer("main", tmp, links),
    startServer("limited", tmp, { CITYWOK_ANONYMOUS_RATE_LIMIT: "1/hour", CITYWOK_MAX_UPLOAD_BYTES: "1000000" }),
  ]);

  // Into an ignored folder, so that a test run leaves the checkout clean; the committed
  // pictures in web/screenshots/ (shown by the README and docs/page.md) are refreshed on
  // purpose with CITYWOK_SCREENSHOTS=web/screenshots scripts/test-web.
  const screenshots = path.resolve(ROOT, process.env.CITYWOK_SCREENSHOTS || "web/test-output/screenshots");
  fs.mkdirSync(screenshots, { recursive: true });
  const fixtures: Fixtures = {
    tmp,
    chromium,
    baseUrl: servers[0].url,
    limitedUrl: servers[1].url,
    mediaUrl,
    clips: {
      match: made.match,
      link: { url: `${mediaUrl}/clip.mp3`, episodeId: made.link.episodeId, offsetS: made.link.offsetS },
      slowLink: `${mediaUrl}/slow.mp3`,
      ambiguous: made.ambiguous,
      noMatch: made.noMatch,
      mic: made.mic,
      micRoom: made.micRoom,
      bigUpload: made.bigUpload,
    },
    screenshots,
  };
  project.provide("fixtures", fixtures);
  console.log(`e2e setup: library, index and servers ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  return async () => {
    servers.forEach((s) => stop(s.proc));
    media.closeAllConnections();
    await new Promise((r) => media.close(r));
    if (!process.env.CITYWOK_E2E_KEEP) fs.rmSync(tmp, { recursive: true, force: true });
  };
}
