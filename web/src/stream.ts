/**
 * The live stream (`GET /ws`) with resume: the page remembers the last event `seq` it applied
 * and, after a dropped connection, reconnects (backing off, with jitter) and subscribes with
 * `since_seq`, so the server replays exactly what was missed. Browsers cannot set headers on a
 * WebSocket, so the key goes in the first message, never in the URL.
 */
export interface StreamEvent {
  seq: number;
  type: string;
  at: string;
  user_id: string;
  data: Record<string, unknown>;
}

export interface PriceTick {
  ticker: string;
  price: string;
  as_of: string;
}

export type StreamStatus = 'connecting' | 'live' | 'reconnecting' | 'closed';

export interface StreamHandlers {
  onEvent?(event: StreamEvent): void;
  onPrice?(tick: PriceTick): void;
  onStatus?(status: StreamStatus, detail?: string): void;
  /**
   * Called once the stream is live again after a gap it could not replay (the first connect, or
   * a `since_seq` past retention): views reload their snapshots. A resume that replays the
   * missed events does not call it.
   */
  onResync?(): void;
}

const BACKOFF_MS_MIN = 250;
const BACKOFF_MS_MAX = 5_000;
/** A connection that has not authenticated and subscribed within this long is dropped and retried. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
const TICKERS_MAX = 100;

export class LiveStream {
  private ws: WebSocket | undefined;
  private lastSeq: number | undefined;
  private tickers: string[] = [];
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private status: StreamStatus = 'connecting';

  constructor(
    private readonly token: string,
    private readonly handlers: StreamHandlers,
    /** Whose events: the admin token must name a user; a user's key follows its own. */
    private readonly userId?: string,
    private readonly events = true,
  ) {}

  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** The tickers whose prices to follow (the subscription is replaced, events continue). */
  setTickers(tickers: string[]): void {
    this.tickers = [...new Set(tickers.map((t) => t.toUpperCase()))].slice(0, TICKERS_MAX);
    if (this.status === 'live') this.subscribe();
  }

  get lastAppliedSeq(): number | undefined {
    return this.lastSeq;
  }

  close(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.handshakeTimer);
    this.ws?.close(1000);
    this.ws = undefined;
    this.setStatus('closed');
  }

  private setStatus(status: StreamStatus, detail?: string): void {
    this.status = status;
    this.handlers.onStatus?.(status, detail);
  }

  private connect(): void {
    const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
    const ws = new WebSocket(url);
    this.ws = ws;
    this.handshakeTimer = setTimeout(() => ws.close(4000, 'handshake timeout'), HANDSHAKE_TIMEOUT_MS);
    ws.addEventListener('open', () => ws.send(JSON.stringify({ action: 'auth', token: this.token })));
    ws.addEventListener('message', (message) => this.onMessage(ws, String(message.data)));
    ws.addEventListener('close', (close) => this.onClose(ws, close.code));
    // An error is always followed by a close, which schedules the retry.
    ws.addEventListener('error', () => undefined);
  }

  private subscribe(): void {
    const message: Record<string, unknown> = { action: 'subscribe', events: this.events, tickers: this.tickers };
    if (this.userId) message.user_id = this.userId;
    if (this.events && this.lastSeq !== undefined) message.since_seq = this.lastSeq;
    this.ws?.send(JSON.stringify(message));
  }

  private onMessage(ws: WebSocket, raw: string): void {
    if (ws !== this.ws) return;
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return;
    }
    if (msg.type === 'authenticated') return this.subscribe();
    if (msg.type === 'subscribed') {
      clearTimeout(this.handshakeTimer);
      const resumed = this.lastSeq !== undefined;
      if (!resumed && typeof msg.last_seq === 'number') this.lastSeq = msg.last_seq;
      this.attempt = 0;
      this.setStatus('live');
      if (!resumed) this.handlers.onResync?.();
      return;
    }
    if (msg.channel === 'events') {
      const event = msg as unknown as StreamEvent;
      // A replay after a reconnect may overlap what a previous connection delivered.
      if (this.lastSeq !== undefined && event.seq <= this.lastSeq) return;
      this.lastSeq = event.seq;
      this.handlers.onEvent?.(event);
      return;
    }
    if (msg.channel === 'prices') return this.handlers.onPrice?.(msg as unknown as PriceTick);
    if (msg.type === 'error') {
      const error = msg.error as { code?: string } | undefined;
      // Too far behind to replay: start again from now and let the views reload.
      if (error?.code === 'EVENTS_EXPIRED') {
        this.lastSeq = undefined;
        this.subscribe();
      }
    }
  }

  private onClose(ws: WebSocket, code: number): void {
    if (ws !== this.ws) return;
    clearTimeout(this.handshakeTimer);
    this.ws = undefined;
    if (this.stopped) return;
    // 4003: the key is no longer valid; retrying will not help.
    if (code === 4003) return this.setStatus('closed', 'the key was refused; sign in again');
    this.attempt += 1;
    const ceiling = Math.min(BACKOFF_MS_MAX, BACKOFF_MS_MIN * 2 ** Math.min(this.attempt, 10));
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.setStatus('reconnecting', `retrying in ${Math.ceil(delay / 100) / 10} s`);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }
}
