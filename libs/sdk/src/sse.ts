// A server-sent events parser (the WHATWG `text/event-stream` rules that matter to a client): lines
// end in LF, CR or CRLF; `data:` lines join with LF; `id:` and `retry:` are remembered; comments
// (`: ping`) and events without data dispatch nothing.

/** One dispatched event. `id` is the last event id in force when it was dispatched. */
export interface SseMessage {
  readonly event: string;
  readonly data: string;
  readonly id: string | null;
}

/** What the parser saw besides events: the server's reconnection hint. */
export interface SseParserHooks {
  readonly onRetry?: (ms: number) => void;
}

/** Parses a byte stream into events, chunk by chunk (chunks may split lines and characters). */
export class SseParser {
  private readonly decoder = new TextDecoder();
  private buffer = '';
  private data: string[] = [];
  private event = '';
  private lastId: string | null = null;
  private pendingCr = false;

  constructor(private readonly hooks: SseParserHooks = {}) {}

  /** The events completed by `chunk`. */
  push(chunk: Uint8Array): SseMessage[] {
    let text = this.decoder.decode(chunk, { stream: true });
    if (this.pendingCr && text.startsWith('\n')) text = text.slice(1);
    this.pendingCr = false;
    this.buffer += text;
    const out: SseMessage[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A CR at the very end may be the first half of a CRLF split across chunks.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) this.pendingCr = true;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const message = this.line(line);
      if (message) out.push(message);
    }
    return out;
  }

  private line(line: string): SseMessage | null {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'event':
        this.event = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.hooks.onRetry?.(Number(value));
        break;
      default:
        break;
    }
    return null;
  }

  private dispatch(): SseMessage | null {
    const data = this.data;
    const event = this.event;
    this.data = [];
    this.event = '';
    if (data.length === 0) return null;
    return { event: event || 'message', data: data.join('\n'), id: this.lastId };
  }
}
