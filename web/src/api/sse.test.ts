import { describe, expect, it } from "vitest";
import { SseParser, type SseEvent } from "./sse";

function parse(chunks: string[]): SseEvent[] {
  const out: SseEvent[] = [];
  const p = new SseParser((e) => out.push(e));
  chunks.forEach((c) => p.push(c));
  p.end();
  return out;
}

describe("SseParser", () => {
  it("reads named events with CRLF line ends, as sse-starlette sends them", () => {
    const text = 'event: received\r\ndata: {"bytes": 10}\r\n\r\nevent: decoding\r\ndata: {}\r\n\r\n';
    expect(parse([text])).toEqual([
      { event: "received", data: '{"bytes": 10}' },
      { event: "decoding", data: "{}" },
    ]);
  });

  it("reassembles events split anywhere across chunks, CRLF included", () => {
    const text = 'event: result\r\ndata: {"status": "match"}\r\n\r\n';
    for (let i = 1; i < text.length; i++) {
      expect(parse([text.slice(0, i), text.slice(i)])).toEqual([{ event: "result", data: '{"status": "match"}' }]);
    }
  });

  it("skips comments (pings), joins data lines and defaults the name to message", () => {
    expect(parse([": ping\n\ndata: a\ndata: b\n\n", "data:c\r\r"])).toEqual([
      { event: "message", data: "a\nb" },
      { event: "message", data: "c" },
    ]);
  });

  it("drops an event whose blank line never came", () => {
    expect(parse(["event: result\ndata: {}\n"])).toEqual([]);
  });
});
