/**
 * The ordering rule of one live subscription to one user's events: every event after the
 * starting position reaches the client exactly once, in seq order, whatever the bus does.
 *
 * Two sources feed a cursor. The bus brings events as they commit, but it is best effort: a
 * message may be lost, arrive twice, late, or out of order (another process published first).
 * The log (`read`) holds every committed event and is the truth. The cursor sends a live event
 * only when it is the very next one (`delivered + 1`); anything else tells it that something
 * is missing, and it reads the log from `delivered` until it has sent everything it knows to
 * exist (`highestSeen`, raised by live events and by the periodic sweep's `lastSeqs`). At most
 * one read runs at a time; live events that arrive meanwhile are held (a bounded number — past
 * it they are dropped, since the log has them too) and sent from memory when the read reaches
 * them, so a replay under load does not read the same events twice.
 *
 * No I/O of its own: reading and sending are the caller's, so the rule is tested alone
 * (live-cursor.test.ts, with a property test of random interleavings).
 */
import { AssertionFailed } from '../../core/errors.js';

export interface Sequenced {
  readonly seq: number;
}

export interface EventCursorOptions<T extends Sequenced> {
  /** The log: items with seq > afterSeq, oldest first, at most `limit`, without gaps. */
  read(afterSeq: number, limit: number): Promise<T[]>;
  /**
   * Sends one item to the client. Returns false when the client's send buffer is above its
   * pacing mark: a replay then waits for `ready` before it sends more (live items are sent
   * anyway; the connection cuts a client that falls too far behind).
   */
  deliver(item: T): boolean;
  /** Resolves when the client can take more (or is gone: the cursor is stopped by then). */
  ready(): Promise<void>;
  /**
   * A read failed. The cursor stays where it is and tries again at the next `onLastSeq` (the
   * sweep); the caller stops it when the failure is final (events expired, a foreign seq).
   */
  onReadError(err: unknown): void;
  /** Items one read returns at most. */
  pageSize: number;
  /** Live items held while a read runs (or before the start) at most; past it they are dropped. */
  heldMax: number;
}

export class EventCursor<T extends Sequenced> {
  /** The last seq sent to the client (the starting position before anything is sent). */
  delivered = 0;
  /** The highest seq known to be committed: what the cursor must reach. */
  highestSeen = 0;
  private started = false;
  private stopped = false;
  /** A read loop is running: the only one, which alone sends while it runs. */
  private catchingUp = false;
  /** The last read failed: wait for the sweep before reading again, not for every live event. */
  private stalled = false;
  /** Live items ahead of `delivered`, by seq, waiting for their turn. */
  private readonly held = new Map<number, T>();

  constructor(private readonly opts: EventCursorOptions<T>) {}

  get isStopped(): boolean {
    return this.stopped;
  }

  /** True while nothing is known to be missing (everything known is sent). */
  get inSync(): boolean {
    return this.started && !this.catchingUp && this.delivered >= this.highestSeen;
  }

  /**
   * Starts after `fromSeq`, knowing the log holds up to `lastSeq`. Live items received before
   * (the cursor is registered for them before `lastSeq` is read, so none can fall between)
   * are held until now. `prefetched` is a first page already read after `fromSeq`.
   */
  start(fromSeq: number, lastSeq: number, prefetched: readonly T[] = []): void {
    if (this.started) throw new AssertionFailed('a cursor starts once');
    // Stopped before it started (its connection closed meanwhile): nothing to do.
    if (this.stopped) return;
    this.started = true;
    this.delivered = fromSeq;
    this.raise(lastSeq);
    for (const seq of this.held.keys()) if (seq <= fromSeq) this.held.delete(seq);
    if (prefetched.length > 0 || this.delivered < this.highestSeen) void this.catchUp(prefetched);
  }

  /** A live item from the bus: sent now if it is the next one, else it starts a catch-up. */
  onLive(item: T): void {
    if (this.stopped) return;
    this.raise(item.seq);
    if (this.started && item.seq <= this.delivered) return;
    if (!this.started || this.catchingUp) {
      this.hold(item);
      return;
    }
    if (item.seq === this.delivered + 1) {
      this.send(item);
      this.sendHeld();
    } else {
      this.hold(item);
    }
    if (this.delivered < this.highestSeen && !this.stalled) void this.catchUp([]);
  }

  /** The log's last seq, from the sweep: catches up if the bus lost something. */
  onLastSeq(lastSeq: number): void {
    if (this.stopped) return;
    this.raise(lastSeq);
    this.stalled = false;
    if (this.started && !this.catchingUp && this.delivered < this.highestSeen) void this.catchUp([]);
  }

  /** Ends the cursor: nothing more is sent, a read in flight is discarded. */
  stop(): void {
    this.stopped = true;
    this.held.clear();
  }

  private raise(seq: number): void {
    if (seq > this.highestSeen) this.highestSeen = seq;
  }

  private hold(item: T): void {
    if (this.held.has(item.seq)) return;
    // Past the bound the held items are dropped rather than grown: the log has them all.
    if (this.held.size >= this.opts.heldMax) this.held.clear();
    this.held.set(item.seq, item);
  }

  private send(item: T): boolean {
    if (item.seq !== this.delivered + 1) throw new AssertionFailed(`the next seq is ${this.delivered + 1}, got ${item.seq}`);
    this.delivered = item.seq;
    this.held.delete(item.seq);
    return this.opts.deliver(item);
  }

  /** Sends the held items that continue the sequence; false when the client asked for a pause. */
  private sendHeld(): boolean {
    let room = true;
    for (let next = this.held.get(this.delivered + 1); next !== undefined; next = this.held.get(this.delivered + 1)) {
      room = this.send(next);
      if (!room) break;
    }
    for (const seq of this.held.keys()) if (seq <= this.delivered) this.held.delete(seq);
    return room;
  }

  /** The one read loop: until everything known is sent, from held items first, then the log. */
  private async catchUp(prefetched: readonly T[]): Promise<void> {
    if (this.catchingUp) return;
    this.catchingUp = true;
    try {
      let page = prefetched;
      for (;;) {
        for (const item of page) {
          if (item.seq <= this.delivered) continue;
          if (!this.send(item)) await this.opts.ready();
          if (this.stopped) return;
        }
        if (!this.sendHeld()) {
          await this.opts.ready();
          if (this.stopped) return;
          continue;
        }
        if (this.delivered >= this.highestSeen) return;
        page = await this.opts.read(this.delivered, this.opts.pageSize);
        if (this.stopped) return;
        if (page.length === 0) {
          // The log has nothing after `delivered` although a seq beyond it was seen (a bus
          // message of another history): trust the log; the sweep raises the mark again if
          // the log grows.
          this.highestSeen = this.delivered;
          this.held.clear();
          return;
        }
      }
    } catch (err) {
      if (this.stopped) return;
      this.stalled = true;
      this.opts.onReadError(err);
    } finally {
      this.catchingUp = false;
    }
  }
}
