/**
 * The live stream (`GET /ws`): each client's events, replayed from the log and followed live,
 * and the prices of the tickers it names, over one WebSocket.
 *
 * One process holds one `LiveStream`: ONE subscription to the event bus and ONE to the quote
 * store's ticks, dispatched by user and by ticker to the connections that want them, so a
 * message is rendered once however many clients receive it. Events are never lost: the bus is
 * only news, and every connection's `EventCursor` (live-cursor.ts) repairs any gap from the
 * log; because a bus message can be lost outright (a publish that failed after the commit, a
 * Redis subscriber that reconnected), a sweep asks the log for the last seq of every
 * subscribed user every `sweepIntervalMs` (one query per `sweepUsersMax` users) and catches up
 * whoever is still behind what the previous sweep read. Prices are not kept: a client that is
 * slow to read gets the latest price of each ticker, not a backlog.
 *
 * Everything is bounded: connections per process, message size (the socket's maxPayload),
 * messages per second per client, tickers per subscription, live events held per connection
 * during a replay, and what the server has queued for a client — past `sendBufferBytesMax` the
 * client is cut (4008) and resumes with `since_seq`. A replay is paced to the client (it waits
 * while the client's buffer is above `replayPauseBytes`), so a big history does not cut a
 * client that reads it at its own speed; one that stops draining for `drainWaitMsMax` is cut
 * all the same.
 */
import type { Socket } from 'node:net';
import type { RawData, WebSocket } from 'ws';
import type { Registry } from 'prom-client';
import { AppError, ValidationError } from '../../core/errors.js';
import type { Logger } from '../../infra/logger.js';
import { counter, gauge } from '../../infra/metrics.js';
import { isUnavailableError } from '../../infra/unavailable.js';
import { normalizeTicker } from '../market-data/instruments.js';
import { UnknownTickerError } from '../market-data/market-data.errors.js';
import type { Quote, QuoteStore, TickBatch, Unsubscribe } from '../market-data/quote-store.js';
import { EVENTS_PAGE_MAX, streamEventJson, type EventBus, type EventLog, type EventRecord } from './event-log.js';
import { EventsSeqAheadError } from './events.errors.js';
import { EventCursor } from './live-cursor.js';
import { SocketSession } from './socket-session.js';
import {
  bearerToken,
  CLOSE_AUTH_FAILED,
  CLOSE_AUTH_TIMEOUT,
  CLOSE_GOING_AWAY,
  CLOSE_SLOW_CONSUMER,
  CLOSE_TRY_AGAIN_LATER,
  errorJson,
  LiveStreamError,
  parseClientMessage,
  priceJson,
  recoverId,
  replyJson,
  type RequestId,
  type SubscriptionRequest,
} from './live-protocol.js';

/** Time a client has to authenticate (header or first message) before it is closed (4001). */
export const LIVE_AUTH_TIMEOUT_MS = 10_000;
/** The server pings every connection this often; one that did not answer the last ping is cut. */
export const LIVE_PING_INTERVAL_MS = 15_000;
/** What the server may have queued for one client before it is cut (4008). */
export const LIVE_SEND_BUFFER_BYTES_MAX = 1024 * 1024;
/** A replay waits while the client's queue is above this (and goes on below half of it). */
export const LIVE_REPLAY_PAUSE_BYTES = 256 * 1024;
/** How long a replay waits for the client to drain; past it the client is cut (4008) as too slow. */
export const LIVE_DRAIN_WAIT_MS_MAX = 10_000;
/** Above this queue, only the latest pending price per ticker is kept, sent once it drains. */
export const LIVE_PRICE_HOLD_BYTES = 16 * 1024;
/**
 * How often the log is asked for every subscribed user's last seq. An event the bus lost
 * reaches its clients within one to two intervals (a sweep acts on what the previous one read).
 */
export const LIVE_SWEEP_INTERVAL_MS = 2_000;
/** Users asked about in one lastSeqs call of the sweep. */
export const LIVE_SWEEP_USERS_MAX = 1_000;
/** Connections one process accepts; beyond it the upgrade is refused (503). */
export const LIVE_CONNECTIONS_MAX = 10_000;
/** Tickers one subscription may name. */
export const LIVE_TICKERS_MAX = 100;
/** Live events held per connection while its replay runs; past it they are read from the log. */
export const LIVE_HELD_EVENTS_MAX = 1_000;
/** Largest message a client may send (the socket's maxPayload; larger closes it with 1009). */
export const LIVE_MESSAGE_BYTES_MAX = 16 * 1024;
/** Messages a client may send per second; beyond, they are refused (RATE_LIMITED) unread. */
export const LIVE_CLIENT_MESSAGES_PER_SECOND_MAX = 20;
/** Messages of one client waiting for their turn (a subscribe waits for the database). */
export const LIVE_CLIENT_MESSAGES_QUEUED_MAX = 32;
/** At shutdown, how long clients get to answer the close before their sockets are cut. */
export const LIVE_SHUTDOWN_GRACE_MS = 1_000;

/** A price of a tick batch, encoded once for every connection that gets it. */
interface OutgoingPrice {
  ticker: string;
  asOfMs: number;
  data: Buffer;
}

/** A Buffer sent as a text frame (ws sends Buffers as binary ones unless told). */
const TEXT_FRAME = { binary: false } as const;

export interface LiveStreamOptions {
  authTimeoutMs: number;
  pingIntervalMs: number;
  sendBufferBytesMax: number;
  replayPauseBytes: number;
  drainWaitMsMax: number;
  priceHoldBytes: number;
  sweepIntervalMs: number;
  sweepUsersMax: number;
  connectionsMax: number;
  tickersMax: number;
  heldEventsMax: number;
  messageBytesMax: number;
  clientMessagesPerSecondMax: number;
  clientMessagesQueuedMax: number;
  /** Events one replay read returns at most (≤ EVENTS_PAGE_MAX). */
  replayPageSize: number;
  shutdownGraceMs: number;
}

export const LIVE_STREAM_DEFAULTS: Readonly<LiveStreamOptions> = {
  authTimeoutMs: LIVE_AUTH_TIMEOUT_MS,
  pingIntervalMs: LIVE_PING_INTERVAL_MS,
  sendBufferBytesMax: LIVE_SEND_BUFFER_BYTES_MAX,
  replayPauseBytes: LIVE_REPLAY_PAUSE_BYTES,
  drainWaitMsMax: LIVE_DRAIN_WAIT_MS_MAX,
  priceHoldBytes: LIVE_PRICE_HOLD_BYTES,
  sweepIntervalMs: LIVE_SWEEP_INTERVAL_MS,
  sweepUsersMax: LIVE_SWEEP_USERS_MAX,
  connectionsMax: LIVE_CONNECTIONS_MAX,
  tickersMax: LIVE_TICKERS_MAX,
  heldEventsMax: LIVE_HELD_EVENTS_MAX,
  messageBytesMax: LIVE_MESSAGE_BYTES_MAX,
  clientMessagesPerSecondMax: LIVE_CLIENT_MESSAGES_PER_SECOND_MAX,
  clientMessagesQueuedMax: LIVE_CLIENT_MESSAGES_QUEUED_MAX,
  replayPageSize: EVENTS_PAGE_MAX,
  shutdownGraceMs: LIVE_SHUTDOWN_GRACE_MS,
};

/**
 * The defaults with `overrides` applied. The pacing marks follow a shrunk buffer limit, so a
 * test (or a small deployment) that lowers `sendBufferBytesMax` alone still paces replays
 * below it.
 */
export function liveStreamOptions(overrides: Partial<LiveStreamOptions> = {}): LiveStreamOptions {
  const o = { ...LIVE_STREAM_DEFAULTS, ...overrides };
  if (overrides.replayPauseBytes === undefined) o.replayPauseBytes = Math.min(o.replayPauseBytes, Math.floor(o.sendBufferBytesMax / 4));
  if (overrides.priceHoldBytes === undefined) o.priceHoldBytes = Math.min(o.priceHoldBytes, Math.floor(o.sendBufferBytesMax / 16));
  for (const [name, value] of Object.entries(o)) {
    if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`live stream option ${name} must be a positive integer, got ${value}`);
  }
  if (o.replayPageSize > EVENTS_PAGE_MAX) throw new RangeError(`replayPageSize must be at most ${EVENTS_PAGE_MAX}`);
  if (o.replayPauseBytes >= o.sendBufferBytesMax) throw new RangeError('replayPauseBytes must be below sendBufferBytesMax');
  return o;
}

/** Who a connection authenticated as. */
export type StreamPrincipal = { kind: 'admin' } | { kind: 'user'; userId: string; keyId: string };

/** What the stream needs from the rest of papertrade, as plain functions and ports. */
export interface LiveStreamPorts {
  events: EventLog;
  bus: EventBus;
  quotes: Pick<QuoteStore, 'subscribe' | 'getMany'>;
  /** True when the ticker (in its listed form) is a listed instrument. */
  isKnownTicker(ticker: string): Promise<boolean>;
  /** The admin token or a user's API key; undefined for anything else. */
  authenticate(token: string): Promise<StreamPrincipal | undefined>;
  /** Throws USER_NOT_FOUND unless the user exists (the admin names any user). */
  assertUser(userId: string): Promise<void>;
  logger: Logger;
  metrics?: Registry;
}

/** An event as the stream fans it out: rendered once, shared by every connection that sends it. */
interface LiveEvent {
  readonly seq: number;
  readonly json: string;
}

const toLiveEvent = (e: EventRecord): LiveEvent => ({ seq: e.seq, json: streamEventJson(e) });

/** One connection's subscription to one user's events. */
interface EventsSubscription {
  readonly userId: string;
  readonly cursor: EventCursor<LiveEvent>;
  /** The user's last seq as the previous sweep read it. */
  sweptSeq: number | undefined;
}

/** What `stats` reports (tests and diagnostics). */
export interface LiveStreamStats {
  connections: number;
  subscribedUsers: number;
  subscribedTickers: number;
  busSubscribed: boolean;
  ticksSubscribed: boolean;
  sweeps: number;
  /** Connections the server closed, by reason (auth_timeout, auth_failed, slow_consumer, ping_timeout, shutdown). */
  closedBy: Record<string, number>;
}

export class LiveStream {
  readonly options: LiveStreamOptions;
  private readonly connections = new Set<LiveConnection>();
  private readonly byUser = new Map<string, Set<EventsSubscription>>();
  private readonly byTicker = new Map<string, Set<LiveConnection>>();
  private unsubscribeBus: Unsubscribe | undefined;
  private unsubscribeTicks: Unsubscribe | undefined;
  private subscribing: Promise<void> | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private sweeping = false;
  private sweepCount = 0;
  private stopped = false;
  /** Ticks heard since the last fan-out, the latest per ticker (at most one per ticker). */
  private readonly pendingQuotes = new Map<string, Quote>();
  private fanOutScheduled = false;
  private lastSweepFailureLogMs = -Infinity;
  private readonly closedBy: Record<string, number> = {};
  private readonly metrics;

  constructor(
    readonly ports: LiveStreamPorts,
    options: Partial<LiveStreamOptions> = {},
  ) {
    this.options = liveStreamOptions(options);
    const registry = ports.metrics;
    this.metrics = {
      connections: gauge(registry, 'papertrade_ws_connections', 'Open live stream connections'),
      eventsSent: counter(registry, 'papertrade_ws_events_sent_total', 'Events sent to live stream clients'),
      pricesSent: counter(registry, 'papertrade_ws_prices_sent_total', 'Prices sent to live stream clients'),
      closed: counter(registry, 'papertrade_ws_closed_total', 'Live stream connections closed by the server, by reason', ['reason']),
      catchUps: counter(registry, 'papertrade_ws_sweep_catch_ups_total', 'Connections the sweep found behind the log'),
    };
  }

  /** Subscribes to the bus and the ticks (retried by the sweep if either fails) and starts the timers. */
  async start(): Promise<void> {
    await this.subscribeFeeds();
    this.sweepTimer = setInterval(() => void this.sweep(), this.options.sweepIntervalMs);
    this.pingTimer = setInterval(() => this.heartbeat(), this.options.pingIntervalMs);
  }

  /** Closes every connection (1001), waiting up to the shutdown grace, and lets go of the feeds. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.sweepTimer);
    clearInterval(this.pingTimer);
    await this.subscribing;
    const closing = [...this.connections].map((c) => c.closeAndWait(CLOSE_GOING_AWAY, 'server shutting down', this.options.shutdownGraceMs));
    await Promise.all([...closing, this.unsubscribeBus?.(), this.unsubscribeTicks?.()]);
    this.unsubscribeBus = undefined;
    this.unsubscribeTicks = undefined;
  }

  /** True when a new connection would be refused (checked before the upgrade). */
  get full(): boolean {
    return this.stopped || this.connections.size >= this.options.connectionsMax;
  }

  stats(): LiveStreamStats {
    return {
      connections: this.connections.size,
      subscribedUsers: this.byUser.size,
      subscribedTickers: this.byTicker.size,
      busSubscribed: this.unsubscribeBus !== undefined,
      ticksSubscribed: this.unsubscribeTicks !== undefined,
      sweeps: this.sweepCount,
      closedBy: { ...this.closedBy },
    };
  }

  /** Takes an upgraded socket; `authorization` is the upgrade request's header, if any. */
  accept(ws: WebSocket, authorization: string | undefined): void {
    if (this.full) {
      // Another upgrade passed the check at the same time; the limit holds all the same.
      ws.close(CLOSE_TRY_AGAIN_LATER, 'too many connections, try again later');
      return;
    }
    const connection = new LiveConnection(this, ws);
    this.connections.add(connection);
    this.metrics.connections.set(this.connections.size);
    ws.on('close', () => this.forget(connection));
    connection.begin(authorization);
  }

  // -- used by the connections ------------------------------------------------------------------

  /** @internal */
  addEvents(subscription: EventsSubscription): void {
    let set = this.byUser.get(subscription.userId);
    if (!set) this.byUser.set(subscription.userId, (set = new Set()));
    set.add(subscription);
  }

  /** @internal */
  removeEvents(subscription: EventsSubscription): void {
    subscription.cursor.stop();
    const set = this.byUser.get(subscription.userId);
    if (!set) return;
    set.delete(subscription);
    if (set.size === 0) this.byUser.delete(subscription.userId);
  }

  /** @internal */
  setTickers(connection: LiveConnection, before: ReadonlySet<string>, after: ReadonlySet<string>): void {
    for (const ticker of before) {
      if (after.has(ticker)) continue;
      const set = this.byTicker.get(ticker);
      set?.delete(connection);
      if (set?.size === 0) this.byTicker.delete(ticker);
    }
    for (const ticker of after) {
      let set = this.byTicker.get(ticker);
      if (!set) this.byTicker.set(ticker, (set = new Set()));
      set.add(connection);
    }
  }

  /** @internal */
  countClose(reason: string): void {
    this.closedBy[reason] = (this.closedBy[reason] ?? 0) + 1;
    this.metrics.closed.inc({ reason });
  }

  /** @internal */
  countSent(kind: 'event' | 'price'): void {
    if (kind === 'event') this.metrics.eventsSent.inc();
    else this.metrics.pricesSent.inc();
  }

  // -- internals ---------------------------------------------------------------------------------

  private forget(connection: LiveConnection): void {
    connection.release();
    this.connections.delete(connection);
    this.metrics.connections.set(this.connections.size);
  }

  private subscribeFeeds(): Promise<void> {
    this.subscribing ??= (async () => {
      try {
        if (!this.unsubscribeBus && !this.stopped) {
          this.unsubscribeBus = await this.ports.bus.subscribe((events) => this.onEvents(events));
        }
        if (!this.unsubscribeTicks && !this.stopped) {
          this.unsubscribeTicks = await this.ports.quotes.subscribe((batch) => this.onTicks(batch));
        }
      } catch (err) {
        // The sweep keeps events whole meanwhile; prices wait for the next attempt.
        this.ports.logger.warn({ err }, 'live stream: subscribing to the event bus or the ticks failed; retrying at the next sweep');
      } finally {
        this.subscribing = undefined;
      }
    })();
    return this.subscribing;
  }

  private onEvents(events: EventRecord[]): void {
    for (const e of events) {
      const subscriptions = this.byUser.get(e.userId);
      if (!subscriptions) continue;
      const item = toLiveEvent(e);
      for (const s of subscriptions) {
        try {
          s.cursor.onLive(item);
        } catch (err) {
          // A bug in one connection's sequence must not starve the others of the message.
          this.ports.logger.error({ err, userId: e.userId, seq: e.seq }, 'live stream: an event could not be dispatched');
        }
      }
    }
  }

  /**
   * Ticks are fanned out on the next turn of the event loop, the latest per ticker: when the
   * process falls behind (many clients, a burst of batches), the batches heard meanwhile
   * collapse into one, so the work waiting is bounded by the number of tickers and clients get
   * the latest price, never a backlog.
   */
  private onTicks(batch: TickBatch): void {
    for (const q of batch.quotes) {
      if (!this.byTicker.has(q.ticker)) continue;
      const pending = this.pendingQuotes.get(q.ticker);
      if (pending === undefined || q.asOfMs >= pending.asOfMs) this.pendingQuotes.set(q.ticker, q);
    }
    if (this.pendingQuotes.size > 0 && !this.fanOutScheduled) {
      this.fanOutScheduled = true;
      setImmediate(() => this.fanOutPrices());
    }
  }

  /**
   * Prices are the stream's bulk (every client, several tickers, every tick), so a fan-out costs
   * as little per message as it can: each price is rendered and encoded once for every
   * connection, and a connection's prices leave in one write (its socket corked while they are
   * framed), not one system call each.
   */
  private fanOutPrices(): void {
    this.fanOutScheduled = false;
    const byConnection = new Map<LiveConnection, OutgoingPrice[]>();
    for (const q of this.pendingQuotes.values()) {
      const connections = this.byTicker.get(q.ticker);
      if (!connections) continue;
      const price: OutgoingPrice = { ticker: q.ticker, asOfMs: q.asOfMs, data: Buffer.from(priceJson(q), 'utf8') };
      for (const c of connections) {
        const list = byConnection.get(c);
        if (list) list.push(price);
        else byConnection.set(c, [price]);
      }
    }
    this.pendingQuotes.clear();
    for (const [c, prices] of byConnection) c.sendPrices(prices);
  }

  /** Every subscribed user's last seq from the log, in bounded batches: catches up whoever is behind. */
  private async sweep(): Promise<void> {
    if (this.sweeping || this.stopped) return;
    this.sweeping = true;
    try {
      if (!this.unsubscribeBus || !this.unsubscribeTicks) void this.subscribeFeeds();
      await sweepSubscriptions(this.ports.events, this.byUser, this.options.sweepUsersMax, () => this.stopped, () => this.metrics.catchUps.inc());
      this.sweepCount += 1;
    } catch (err) {
      const now = Date.now();
      if (now - this.lastSweepFailureLogMs >= 60_000) {
        this.lastSweepFailureLogMs = now;
        this.ports.logger.warn({ err }, 'live stream: the sweep could not read the event log; connections catch up when it answers');
      }
    } finally {
      this.sweeping = false;
    }
  }

  private heartbeat(): void {
    for (const c of this.connections) c.heartbeat();
  }
}

/** One client: its authentication, its subscription, and what is queued for it. */
class LiveConnection {
  private principal: StreamPrincipal | undefined;
  private authenticating = false;
  private authTimer: NodeJS.Timeout | undefined;
  private events: EventsSubscription | undefined;
  private tickers: ReadonlySet<string> = new Set();
  /** The as_of of the last price sent per ticker: an older one (a snapshot overtaken by a tick) is not sent. */
  private readonly priceAsOfMs = new Map<string, number>();
  /** Prices held while the client's queue is long: the latest per ticker. */
  private readonly heldPrices = new Map<string, string | Buffer>();
  private readonly rate: ClientMessageRate;
  /** The socket's pacing, heartbeat and message queue (shared with Alpaca's stream). */
  private readonly session: SocketSession;

  constructor(
    private readonly hub: LiveStream,
    private readonly ws: WebSocket,
  ) {
    this.rate = new ClientMessageRate(hub.options.clientMessagesPerSecondMax);
    this.session = new SocketSession(ws, hub.options, {
      onSlow: () => this.closeSlow(),
      onPingTimeout: () => this.hub.countClose('ping_timeout'),
      onTaskError: (err) => this.sendError(undefined, err),
      onDrain: () => this.sendHeldPrices(),
      holdsBack: () => this.heldPrices.size > 0,
    });
  }

  private get closed(): boolean {
    return this.session.closed;
  }

  private get options(): LiveStreamOptions {
    return this.hub.options;
  }

  begin(authorization: string | undefined): void {
    this.ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    this.authTimer = setTimeout(() => {
      if (this.principal || this.authenticating || this.closed) return;
      this.close(CLOSE_AUTH_TIMEOUT, 'authentication timed out', 'auth_timeout');
    }, this.options.authTimeoutMs);
    if (authorization !== undefined) this.session.enqueue(() => this.authenticate(bearerToken(authorization), undefined, false));
  }

  heartbeat(): void {
    this.session.heartbeat();
  }

  /** Called once the socket has closed: nothing of this connection stays registered. */
  release(): void {
    this.session.closed = true;
    clearTimeout(this.authTimer);
    this.dropEvents();
    this.replaceTickers(new Set());
    this.session.wakeReadyWaiters();
  }

  close(code: number, reason: string, metricReason: string): void {
    if (this.closed) return;
    this.hub.countClose(metricReason);
    this.release();
    this.ws.close(code, reason);
  }

  /** Closes and resolves once the socket is closed, cutting it after `graceMs`. */
  closeAndWait(code: number, reason: string, graceMs: number): Promise<void> {
    return this.session.closeAndWait(graceMs, () => this.close(code, reason, 'shutdown'));
  }

  // -- sending -----------------------------------------------------------------------------------

  /** Sends one event; false asks a replay to wait (`ready`). Cuts a client too far behind. */
  private sendEvent(json: string): boolean {
    if (this.closed) return true;
    const room = this.session.sendPaced(json);
    this.hub.countSent('event');
    return room;
  }

  private closeSlow(): void {
    this.close(CLOSE_SLOW_CONSUMER, 'too far behind: reconnect and resume with since_seq', 'slow_consumer');
  }

  /** A control message (a reply, an error): small, never held back. */
  private sendControl(json: string): void {
    this.session.sendControl(json);
  }

  /** A batch's prices for this connection, written together (see LiveStream.onTicks). */
  sendPrices(prices: readonly OutgoingPrice[]): void {
    if (this.closed) return;
    // ws frames each message with its own corked pair of writes; corking around the batch
    // makes the whole batch one writev.
    const socket = (this.ws as unknown as { _socket?: Socket })._socket;
    socket?.cork();
    try {
      for (const p of prices) this.sendPrice(p.ticker, p.asOfMs, p.data);
    } finally {
      socket?.uncork();
    }
  }

  sendPrice(ticker: string, asOfMs: number, json: string | Buffer): void {
    if (this.closed) return;
    const last = this.priceAsOfMs.get(ticker);
    if (last !== undefined && asOfMs <= last) return;
    this.priceAsOfMs.set(ticker, asOfMs);
    if (this.heldPrices.size > 0 || this.ws.bufferedAmount > this.options.priceHoldBytes) {
      // Replaces any older held price of the ticker: the client gets the latest, not a backlog.
      this.heldPrices.set(ticker, json);
      return;
    }
    this.ws.send(json, TEXT_FRAME, this.session.onWritten);
    this.hub.countSent('price');
  }

  /** Once the client has read enough of its queue, the prices held back meanwhile (the latest of each). */
  private sendHeldPrices(): void {
    if (this.heldPrices.size === 0 || this.ws.bufferedAmount > this.options.priceHoldBytes) return;
    const held = [...this.heldPrices.values()];
    this.heldPrices.clear();
    for (const json of held) {
      this.ws.send(json, TEXT_FRAME, this.session.onWritten);
      this.hub.countSent('price');
    }
  }

  private sendError(id: RequestId | undefined, err: unknown): void {
    if (err instanceof AppError) return this.sendControl(errorJson(id, err));
    if (isUnavailableError(err)) {
      this.hub.ports.logger.warn({ err }, 'live stream: a dependency is unavailable');
      return this.sendControl(errorJson(id, { code: 'SERVICE_UNAVAILABLE', message: 'a dependency is unavailable, try again', service: 'events' }));
    }
    this.hub.ports.logger.error({ err }, 'live stream: unhandled error');
    this.sendControl(errorJson(id, { code: 'INTERNAL', message: 'internal error', service: 'events' }));
  }

  // -- receiving ---------------------------------------------------------------------------------

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.closed) return;
    const admitted = this.rate.admit(this.session.queued >= this.options.clientMessagesQueuedMax);
    if (admitted !== 'read') {
      // One refusal per window says why; the rest of a flood is dropped unanswered.
      if (admitted === 'refuse') {
        const message = `at most ${this.options.clientMessagesPerSecondMax} messages a second and ${this.options.clientMessagesQueuedMax} waiting; messages past it are not read`;
        this.sendControl(errorJson(undefined, new LiveStreamError('RATE_LIMITED', message, { retry_after_s: 1 })));
      }
      return;
    }
    const text = isBinary ? undefined : rawText(data);
    this.session.enqueue(() => this.handle(text));
  }

  private async handle(text: string | undefined): Promise<void> {
    let id: RequestId | undefined;
    try {
      if (text === undefined) throw new ValidationError('messages are JSON text, not binary');
      id = recoverId(text);
      const message = parseClientMessage(text, this.options.tickersMax);
      switch (message.action) {
        case 'ping':
          return this.sendControl(replyJson('pong', id));
        case 'auth':
          if (this.principal) throw new ValidationError('this connection is authenticated already');
          return await this.authenticate(message.token, id, true);
        case 'subscribe':
          return await this.subscribe(this.requirePrincipal(), message.subscription, id);
        case 'unsubscribe':
          this.requirePrincipal();
          this.dropEvents();
          this.replaceTickers(new Set());
          return this.sendControl(replyJson('unsubscribed', id));
      }
    } catch (err) {
      this.sendError(id, err);
    }
  }

  private requirePrincipal(): StreamPrincipal {
    if (!this.principal) throw new LiveStreamError('UNAUTHENTICATED', 'authenticate first: send { "action": "auth", "token": "..." } or connect with an Authorization header');
    return this.principal;
  }

  /** A bad token, from the header or a message, closes the connection (4003). */
  private async authenticate(token: string | undefined, id: RequestId | undefined, byMessage: boolean): Promise<void> {
    let principal: StreamPrincipal | undefined;
    if (token !== undefined) {
      this.authenticating = true;
      try {
        principal = await this.hub.ports.authenticate(token);
      } finally {
        this.authenticating = false;
      }
    }
    if (this.closed) return;
    if (!principal) return this.close(CLOSE_AUTH_FAILED, 'invalid credentials', 'auth_failed');
    this.principal = principal;
    clearTimeout(this.authTimer);
    if (byMessage) {
      this.sendControl(replyJson('authenticated', id, principal.kind === 'admin' ? { admin: true } : { user_id: principal.userId }));
    }
  }

  /**
   * Replaces the subscription. Everything is checked before anything changes, so a refused
   * subscribe leaves the previous subscription as it was. For events, the new cursor is
   * registered for live events BEFORE the last seq is read: an event committed after that read
   * is published after it too, so it reaches the cursor live (or through the sweep).
   */
  private async subscribe(principal: StreamPrincipal, request: SubscriptionRequest, id: RequestId | undefined): Promise<void> {
    if (request.userId !== undefined) {
      if (principal.kind === 'user' && request.userId !== principal.userId) {
        throw new LiveStreamError('FORBIDDEN', "a user's key subscribes to its own user only", { user_id: request.userId });
      }
      if (principal.kind === 'admin') await this.hub.ports.assertUser(request.userId);
    }
    let userId: string | undefined;
    if (request.events) {
      userId = request.userId ?? (principal.kind === 'user' ? principal.userId : undefined);
      if (userId === undefined) throw new ValidationError('the admin token names the user whose events it follows: user_id', { field: 'user_id' });
    }
    const tickers = new Set<string>();
    for (const raw of request.tickers) {
      const ticker = normalizeTicker(raw) ?? raw;
      if (!(await this.hub.ports.isKnownTicker(ticker))) throw new UnknownTickerError(ticker);
      tickers.add(ticker);
    }

    const current = this.events;
    let next: { subscription: EventsSubscription; fromSeq: number; lastSeq: number; firstPage: LiveEvent[] } | undefined;
    let kept: { fromSeq: number; lastSeq: number } | undefined;
    if (userId !== undefined && current && current.userId === userId && request.sinceSeq === undefined) {
      // The same user again without a position: the stream goes on where it is, without a gap.
      kept = { fromSeq: current.cursor.delivered, lastSeq: await this.hub.ports.events.lastSeq(userId) };
    } else if (userId !== undefined) {
      const subscription = this.newEventsSubscription(userId);
      this.hub.addEvents(subscription);
      try {
        const lastSeq = await this.hub.ports.events.lastSeq(userId);
        if (request.sinceSeq !== undefined && request.sinceSeq > lastSeq) throw new EventsSeqAheadError(userId, request.sinceSeq, lastSeq);
        const fromSeq = request.sinceSeq ?? lastSeq;
        // The first page is read now, so events past retention refuse the subscribe itself.
        const firstPage = fromSeq < lastSeq ? (await this.hub.ports.events.readAfter(userId, fromSeq, this.options.replayPageSize)).map(toLiveEvent) : [];
        next = { subscription, fromSeq, lastSeq, firstPage };
      } catch (err) {
        this.hub.removeEvents(subscription);
        throw err;
      }
    }
    if (this.closed) {
      if (next) this.hub.removeEvents(next.subscription);
      return;
    }

    if (!kept) {
      this.dropEvents();
      this.events = next?.subscription;
    }
    this.replaceTickers(tickers);
    const position = kept ?? next;
    this.sendControl(
      replyJson('subscribed', id, {
        events: userId !== undefined,
        ...(userId !== undefined ? { user_id: userId, last_seq: position!.lastSeq, from_seq: position!.fromSeq } : {}),
        tickers: [...tickers],
      }),
    );
    next?.subscription.cursor.start(next.fromSeq, next.lastSeq, next.firstPage);
    if (tickers.size > 0) await this.sendPriceSnapshot([...tickers]);
  }

  private newEventsSubscription(userId: string): EventsSubscription {
    const subscription: EventsSubscription = {
      userId,
      sweptSeq: undefined,
      cursor: new EventCursor<LiveEvent>({
        read: async (afterSeq, limit) => (await this.hub.ports.events.readAfter(userId, afterSeq, limit)).map(toLiveEvent),
        deliver: (item) => this.sendEvent(item.json),
        ready: () => this.session.ready(),
        onReadError: (err) => this.onCatchUpError(subscription, err),
        pageSize: this.options.replayPageSize,
        heldMax: this.options.heldEventsMax,
      }),
    };
    return subscription;
  }

  /**
   * A catch-up read failed. A refusal of the log (events past retention) ends the events part of
   * the subscription with the error; anything else is transient, and the sweep retries.
   */
  private onCatchUpError(subscription: EventsSubscription, err: unknown): void {
    if (err instanceof AppError) {
      if (this.events === subscription) this.events = undefined;
      this.hub.removeEvents(subscription);
      this.sendError(undefined, err);
      return;
    }
    this.hub.ports.logger.debug({ err, userId: subscription.userId }, 'live stream: a catch-up read failed; the sweep retries');
  }

  private replaceTickers(tickers: ReadonlySet<string>): void {
    this.hub.setTickers(this, this.tickers, tickers);
    this.tickers = tickers;
    for (const ticker of this.priceAsOfMs.keys()) if (!tickers.has(ticker)) this.priceAsOfMs.delete(ticker);
    for (const ticker of this.heldPrices.keys()) if (!tickers.has(ticker)) this.heldPrices.delete(ticker);
  }

  private dropEvents(): void {
    if (!this.events) return;
    this.hub.removeEvents(this.events);
    this.events = undefined;
  }

  /** The latest stored price of each ticker, so a client need not wait for the next tick. */
  private async sendPriceSnapshot(tickers: string[]): Promise<void> {
    try {
      const quotes = await this.hub.ports.quotes.getMany(tickers);
      for (const ticker of tickers) {
        const q = quotes.get(ticker);
        if (q && this.tickers.has(ticker)) this.sendPrice(ticker, q.asOfMs, priceJson(q));
      }
    } catch (err) {
      // Prices are best effort; the next tick brings them.
      this.hub.ports.logger.debug({ err }, 'live stream: the price snapshot could not be read');
    }
  }
}

/**
 * What the sweep needs of a subscription: its cursor, and the user's last seq as the previous
 * sweep read it. (The Alpaca stream, src/alpaca, sweeps its subscriptions the same way.)
 */
export interface SweptSubscription {
  readonly cursor: Pick<EventCursor<{ seq: number }>, 'delivered' | 'inSync' | 'onLastSeq'>;
  sweptSeq: number | undefined;
}

/**
 * One sweep over the subscriptions of `byUser`: the log's last seq of every user, in calls of
 * at most `usersMax` users, and each cursor caught up to what the previous sweep read. The mark
 * read one sweep ago is acted on: an event committed since may still be on its way over the bus
 * (no read for that), one committed before it is surely lost. `onCatchUp` counts a cursor that
 * was in sync yet behind that mark (the bus lost something).
 */
export async function sweepSubscriptions(
  events: Pick<EventLog, 'lastSeqs'>,
  byUser: ReadonlyMap<string, ReadonlySet<SweptSubscription>>,
  usersMax: number,
  isStopped: () => boolean,
  onCatchUp: () => void,
): Promise<void> {
  const userIds = [...byUser.keys()];
  for (let i = 0; i < userIds.length && !isStopped(); i += usersMax) {
    const lastSeqs = await events.lastSeqs(userIds.slice(i, i + usersMax));
    for (const [userId, lastSeq] of lastSeqs) {
      for (const s of byUser.get(userId) ?? []) {
        const mark = s.sweptSeq;
        s.sweptSeq = lastSeq;
        if (mark === undefined) continue;
        if (s.cursor.delivered < mark && s.cursor.inSync) onCatchUp();
        s.cursor.onLastSeq(mark);
      }
    }
  }
}

/**
 * A client's message rate, in windows of one second: `read` while the window has room (and the
 * queue of messages waiting is not full), then `refuse` once (the caller says why) and `drop`
 * for the rest of the window.
 */
export class ClientMessageRate {
  private windowStartMs = 0;
  private count = 0;
  private refused = false;

  constructor(private readonly perSecondMax: number) {}

  admit(queueFull: boolean, nowMs = Date.now()): 'read' | 'refuse' | 'drop' {
    if (nowMs - this.windowStartMs >= 1_000) {
      this.windowStartMs = nowMs;
      this.count = 0;
      this.refused = false;
    }
    this.count += 1;
    if (this.count <= this.perSecondMax && !queueFull) return 'read';
    if (this.refused) return 'drop';
    this.refused = true;
    return 'refuse';
  }
}

/** A message's bytes as text (ws hands a Buffer, a list of fragments or an ArrayBuffer). */
export function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}
