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
