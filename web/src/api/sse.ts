// A parser of `text/event-stream` for streams read with fetch (EventSource cannot POST).
// Follows the WHATWG rules that matter here: lines end in \r\n, \n or \r; `event:` names
// the event, `data:` lines are joined with \n, comments (`:`) are skipped, and an empty
// line dispatches.

export interface SseEvent {
  event: string;
  data: string;
}

export class SseParser {
  private buffer = "";
  private event = "";
  private data: string[] = [];
  private pendingCR = false;

  constructor(private readonly onEvent: (event: SseEvent) => void) {}

  /** Feed decoded text; complete events are dispatched as they are found. */
  push(chunk: string): void {
    let text = chunk;
    if (this.pendingCR && text.startsWith("\n")) text = text.slice(1);
    this.pendingCR = false;
    this.buffer += text;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A lone \r at the very end may be the first half of \r\n: wait for more.
      if (match[0] === "\r" && match.index === this.buffer.length - 1) {
        this.line(this.buffer.slice(0, match.index));
        this.buffer = "";
        this.pendingCR = true;
        break;
      }
      this.line(this.buffer.slice(0, match.index));
      this.buffer = this.buffer.slice(match.index + match[0].length);
    }
  }

  /** The stream ended: an event without its final blank line is dropped, as browsers do. */
  end(): void {
    this.buffer = "";
    this.event = "";
    this.data = [];
  }

  private line(line: string): void {
    if (line === "") {
      if (this.data.length > 0) {
        this.onEvent({ event: this.event || "message", data: this.data.join("\n") });
      }
      this.event = "";
      this.data = [];
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
  }
}
