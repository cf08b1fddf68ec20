// For the tests of uploads: enough of XMLHttpRequest to play an upload with progress and a
// streamed answer.
export class FakeXhr {
  static last: FakeXhr | null = null;
  upload: { onprogress: ((e: Partial<ProgressEvent>) => void) | null } = { onprogress: null };
  onprogress: (() => void) | null = null;
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  status = 0;
  responseText = "";
  headers: Record<string, string> = {};
  sent: unknown = null;
  opened: string[] = [];
  aborted = false;
  constructor() {
    FakeXhr.last = this;
  }
  open(method: string, url: string) {
    this.opened = [method, url];
  }
  setRequestHeader(k: string, v: string) {
    this.headers[k] = v;
  }
  getResponseHeader(k: string) {
    return k.toLowerCase() === "content-type" ? "text/event-stream; charset=utf-8" : null;
  }
  send(body: unknown) {
    this.sent = body;
  }
  abort() {
    this.aborted = true;
  }
}

