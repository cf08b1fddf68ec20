import { describe, expect, it } from "vitest";
import type { IdentifyResult } from "../api/types";
import { decodeResult, encodeResult, shareUrl } from "./share";

const match = {
  show: "Émissions: «Ça»", season: 2, episode: 5, title: "Le début 🎬", episode_id: "x-s02e05",
  offset_s: 83.456, confidence: 0.9731, score: 12.5, speed: 1.15, pitch_semitones: 0,
};
const result: IdentifyResult = {
  file: "secret-name.mp4", status: "match", match, candidates: [match, { ...match, episode: 6, episode_id: "x-s02e06", confidence: 0.1 }],
  elapsed_ms: 100, clip_duration_s: 5.02,
};

describe("share", () => {
  it("round-trips an answer through the fragment, without the file name", () => {
    const fragment = encodeResult(result);
    expect(fragment).toMatch(/^r=[A-Za-z0-9_-]+$/);
    const back = decodeResult(`#${fragment}`)!;
    expect(back.status).toBe("match");
    expect(back.match).toMatchObject({ show: match.show, title: match.title, season: 2, episode: 5, offset_s: 83.46, confidence: 0.973 });
    expect(back.candidates).toHaveLength(2);
    expect(back.file).toBeUndefined();
  });

  it("carries the answer as named fields, links left out, new fields kept", () => {
    const linked = { ...match, decided_by: "sound" as const, watch_url: "https://x.example/", preview_image: "/p.jpg", later_field: "kept" };
    const fragment = encodeResult({ ...result, match: linked, candidates: [linked] });
    const payload = JSON.parse(atob(fragment.slice(2).replace(/-/g, "+").replace(/_/g, "/")));
    expect(payload).toMatchObject({ v: 2, status: "match", match: 0, clip_duration_s: 5 });
    expect(payload.candidates[0]).toMatchObject({ episode_id: "x-s02e05", offset_s: 83.46, decided_by: "sound" });
    expect(payload.candidates[0]).not.toHaveProperty("watch_url");
    const back = decodeResult(fragment)!;
    expect(back.match).toMatchObject({ decided_by: "sound", later_field: "kept", score: 12.5 });
    expect(back.match).not.toHaveProperty("watch_url");
    expect(back.match).not.toHaveProperty("preview_image");
  });

  it("still opens old links, whose candidates were positional tuples (v1)", () => {
    const old = { v: 1, s: "match", m: 1, d: 5, c: [["Show", 1, 2, null, "show-s01e02", 83.46, 0.973, 1]] };
    const back = decodeResult(`#r=${btoa(JSON.stringify(old))}`)!;
    expect(back.status).toBe("match");
    expect(back.match).toMatchObject({ show: "Show", season: 1, episode: 2, episode_id: "show-s01e02", offset_s: 83.46, confidence: 0.973 });
    expect(back.clip_duration_s).toBe(5);
  });

  it("refuses a named link whose match is not among its candidates, or whose fields are wrong", () => {
    const bad = (payload: object) => decodeResult(`#r=${btoa(JSON.stringify(payload))}`);
    const c = { show: "S", season: 1, episode: 1, title: null, episode_id: "s", offset_s: 1, confidence: 1, speed: 1 };
    expect(bad({ v: 2, status: "match", match: 3, clip_duration_s: 1, candidates: [c] })).toBeNull();
    expect(bad({ v: 2, status: "match", match: 0, clip_duration_s: 1, candidates: [{ ...c, offset_s: "1" }] })).toBeNull();
    expect(bad({ v: 2, status: "no_match", match: 0, clip_duration_s: 1, candidates: [c] })).toBeNull();
    expect(bad({ v: 2, status: "match", match: 0, clip_duration_s: 1, candidates: [c] })).not.toBeNull();
  });

  it("round-trips no_match", () => {
    const none: IdentifyResult = { status: "no_match", match: null, candidates: [], elapsed_ms: 1, clip_duration_s: 3 };
    expect(decodeResult(encodeResult(none))).toMatchObject({ status: "no_match", match: null, candidates: [] });
  });

  it("builds the URL on the page's own address", () => {
    expect(shareUrl(result, "https://citywok.example/?x=1#old")).toMatch(/^https:\/\/citywok\.example\/#r=/);
  });

  it.each(["", "#", "#r=", "#r=!!!", "#x=abc", `#r=${btoa('{"v":1,"s":"match","m":1,"c":[["a",1,1,null,"e",1,1]]}')}`,
    `#r=${btoa('{"v":2,"s":"match","m":0,"c":[]}')}`, `#r=${btoa('{"v":1,"s":"evil","m":0,"c":[]}')}`,
    `#r=${btoa('{"v":1,"s":"match","m":0,"c":[]}')}`])("rejects %s", (fragment) => {
    expect(decodeResult(fragment)).toBeNull();
  });
});
