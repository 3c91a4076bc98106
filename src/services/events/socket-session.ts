/**
 * The socket mechanics every stream connection has, whatever its protocol (the native `/ws`,
 * Alpaca's `/stream`): heartbeats, sends paced to what the client reads, a bounded send buffer
 * that cuts a client too far behind, waiting for a drain with a deadline, client messages
 * handled one at a time in order, and a close that waits for the socket. The connection owns
 * the protocol (what it sends and when it closes); this owns how bytes reach the socket.
 */
import type { WebSocket } from 'ws';

export interface SocketSessionLimits {
  /** Unsent bytes past which the client is cut (`onSlow`). */
  sendBufferBytesMax: number;
  /** Unsent bytes past which a replay waits for `ready` (it resumes below half of it). */
  replayPauseBytes: number;
  /** How long `ready` waits for the client to drain before it is as slow as an overflow. */
  drainWaitMsMax: number;
}

export interface SocketSessionHooks {
  /** The client is too far behind: the owner says why and closes. */
  onSlow(): void;
  /** No pong since the last ping: the socket is being terminated. */
  onPingTimeout(): void;
  /** A handled message threw: the owner answers it. */
  onTaskError(err: unknown): void;
  /** The client read some of its queue: the owner may send what it held back. */
  onDrain?(): void;
  /** Whether the owner holds anything back for a drain (so a write is worth a look). */
  holdsBack?(): boolean;
}

const TEXT = { binary: false } as const;
const BINARY = { binary: true } as const;

export class SocketSession {
  /** Set once the connection is closing or closed: nothing more is sent or handled. */
  closed = false;
  /** Messages waiting for (or in) their turn. */
  queued = 0;
  /** Answered the last ping (or none was sent yet). */
  private alive = true;
  private readyWaiters: (() => void)[] = [];
  private chain: Promise<void> = Promise.resolve();
  /** Called when a send has been written to the socket: where drains are noticed. */
  readonly onWritten = (): void => {
    if (this.readyWaiters.length > 0 || this.hooks.holdsBack?.() === true) this.drained();
  };

  constructor(
    readonly ws: WebSocket,
    private readonly limits: SocketSessionLimits,
    private readonly hooks: SocketSessionHooks,
    /** Binary frames (Alpaca's trade stream) or text frames (the native stream). */
    private readonly binary = false,
  ) {
    ws.on('pong', () => {
      this.alive = true;
    });
  }

  /** Pings, or terminates a socket that did not answer the previous ping. */
  heartbeat(): void {
    if (this.closed) return;
    if (!this.alive) {
      this.hooks.onPingTimeout();
      this.ws.terminate();
      return;
    }
    this.alive = false;
    this.ws.ping();
  }

  /**
   * Sends one item of a stream; false asks a replay to wait (`ready`). A client whose queue
   * passes the buffer limit is cut (`onSlow`), and true is returned (there is nothing to wait for).
   */
  sendPaced(data: string | Buffer): boolean {
    if (this.closed) return true;
    this.ws.send(data, this.binary ? BINARY : TEXT, this.onWritten);
    const buffered = this.ws.bufferedAmount;
    if (buffered > this.limits.sendBufferBytesMax) {
      this.hooks.onSlow();
      return true;
    }
    return buffered <= this.limits.replayPauseBytes;
  }

  /** A reply or an error: small, never held back (but a client past the buffer limit is cut). */
  sendControl(data: string | Buffer): void {
    if (this.closed) return;
    this.ws.send(data, this.binary ? BINARY : TEXT, this.onWritten);
    if (this.ws.bufferedAmount > this.limits.sendBufferBytesMax) this.hooks.onSlow();
  }

  /**
   * Resolves when the client's queue is back below half the pause mark, or the connection is
   * gone: a client that does not drain within `drainWaitMsMax` is as slow as one whose queue
   * overflows, and is cut the same way.
   */
  ready(): Promise<void> {
    if (this.closed || this.ws.bufferedAmount <= this.limits.replayPauseBytes / 2) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.hooks.onSlow(), this.limits.drainWaitMsMax);
      this.readyWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Everything waiting for a drain goes on (the connection closed, or the queue shrank). */
  wakeReadyWaiters(): void {
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w();
  }

  /** Handles `task` after every message before it; a throw is answered by the owner. */
  enqueue(task: () => Promise<void>): void {
    this.queued += 1;
    this.chain = this.chain.then(async () => {
      try {
        if (!this.closed) await task();
      } catch (err) {
        this.hooks.onTaskError(err);
      } finally {
        this.queued -= 1;
      }
    });
  }

  /** Runs the owner's `close` and resolves once the socket is closed, cutting it after `graceMs`. */
  closeAndWait(graceMs: number, close: () => void): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.ws.readyState === this.ws.CLOSED) return resolve();
      const timer = setTimeout(() => this.ws.terminate(), graceMs);
      this.ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      close();
    });
  }

  private drained(): void {
    if (this.closed) return this.wakeReadyWaiters();
    this.hooks.onDrain?.();
    if (this.readyWaiters.length > 0 && this.ws.bufferedAmount <= this.limits.replayPauseBytes / 2) this.wakeReadyWaiters();
  }
}
