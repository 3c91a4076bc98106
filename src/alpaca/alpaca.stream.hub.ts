/**
 * Alpaca's trading stream (`GET /stream`, `trade_updates`) over papertrade's event log: each
 * connection follows the order events of the account its key belongs to, in Alpaca's shapes.
 *
 * It is built like the native live stream (src/services/events/live-stream.ts) and shares its
 * rules and limits: one subscription to the event bus per process, dispatched by user, every
 * event rendered once for all the connections of its user; an `EventCursor` per connection, so
 * every event after the starting position reaches the client exactly once and in order, the
 * log repairing whatever the bus loses (and the sweep finding what it lost outright). Events
 * that are not trade updates (order.open, order.triggered, cash and account events) move the
 * cursor without being sent. Bounded like the native stream: connections per process, message
 * size, messages per second, what is queued for a client (past it the client is cut with 4008
 * and resumes with since_seq), a replay paced to the client, an authentication deadline, and a
 * heartbeat that terminates sockets that stopped answering pings.
 *
 * Frames leave as binary frames, as Alpaca's paper stream sends them (both SDKs read either).
 * Pings from a client (Alpaca's SDK 4.x pings every 10 s and drops a socket that has not
 * answered within 5 s) are answered by `ws` itself, at the socket, as they arrive; nothing here
 * holds the event loop long enough to delay that (a replay renders one page at a time and waits
 * whenever the client's queue is long).
 */
import type { RawData, WebSocket } from 'ws';
import type { Registry } from 'prom-client';
import { AppError } from '../core/errors.js';
import type { Logger } from '../infra/logger.js';
import { counter, gauge } from '../infra/metrics.js';
import { isUnavailableError } from '../infra/unavailable.js';
import type { Unsubscribe } from '../infra/channel.js';
import type { EventBus, EventLog, EventRecord } from '../services/events/event-log.js';
import { EventsSeqAheadError } from '../services/events/events.errors.js';
import { EventCursor } from '../services/events/live-cursor.js';
import { SocketSession } from '../services/events/socket-session.js';
import { CLOSE_AUTH_FAILED, CLOSE_AUTH_TIMEOUT, CLOSE_GOING_AWAY, CLOSE_SLOW_CONSUMER, CLOSE_TRY_AGAIN_LATER } from '../services/events/live-protocol.js';
import {
  ClientMessageRate,
  liveStreamOptions,
  rawText,
  sweepSubscriptions,
  type LiveStreamOptions,
} from '../services/events/live-stream.js';
import {
  authorizationFrame,
  availableStreams,
  errorFrame,
  listeningFrame,
  parseAlpacaMessage,
  TRADE_UPDATES,
  tradeUpdateFrame,
  type AlpacaClientMessage,
} from './alpaca.stream.protocol.js';

/** RFC 6455: a message too big to process. */
export const CLOSE_MESSAGE_TOO_BIG = 1009;
/** The events a replay needs were removed by retention: the client reads its state from REST again. */
export const CLOSE_RESYNC_REQUIRED = 4010;

/** Frames are JSON as bytes, sent as binary frames: what Alpaca's paper stream does. */
const BINARY_FRAME = { binary: true } as const;

/** The stream's own refusals (the event log's are its AppErrors, passed through). */
export class AlpacaStreamError extends AppError<'UNAUTHENTICATED' | 'RATE_LIMITED'> {
  constructor(code: 'UNAUTHENTICATED' | 'RATE_LIMITED', message: string, details?: Record<string, unknown>) {
    super('alpaca', code, message, { details });
  }
}

/** Who a credential stands for. Only a user's key has trade updates; the others are refused by name. */
export type AlpacaStreamPrincipal = { kind: 'user'; userId: string; keyId: string } | { kind: 'admin' } | { kind: 'teacher' };

export interface AlpacaStreamPorts {
  events: EventLog;
  bus: EventBus;
  /** The admin token, a user's key or a teacher key; undefined for anything else. */
  authenticate(token: string): Promise<AlpacaStreamPrincipal | undefined>;
  logger: Logger;
  metrics?: Registry;
}

/** The credential of the upgrade request: `present` when it carried any, `token` when it is well formed. */
export interface UpgradeCredential {
  present: boolean;
  token: string | undefined;
}

/** An event as the stream fans it out: its trade_updates frame, rendered once; none for other events. */
export interface TradeItem {
  readonly seq: number;
  readonly frame: Buffer | undefined;
}

/** One connection's subscription to its user's trade updates. */
interface TradeSubscription {
  readonly userId: string;
  readonly cursor: EventCursor<TradeItem>;
  /** The user's last seq as the previous sweep read it. */
  sweptSeq: number | undefined;
}

export interface AlpacaStreamStats {
  connections: number;
  subscribedUsers: number;
  busSubscribed: boolean;
  sweeps: number;
  /** Connections the server closed, by reason (auth_timeout, auth_failed, slow_consumer, ping_timeout, message_too_big, resync, shutdown). */
  closedBy: Record<string, number>;
}

export class AlpacaStream {
  readonly options: LiveStreamOptions;
  private readonly connections = new Set<AlpacaConnection>();
  private readonly byUser = new Map<string, Set<TradeSubscription>>();
  private unsubscribeBus: Unsubscribe | undefined;
  private subscribing: Promise<void> | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private sweeping = false;
  private sweepCount = 0;
  private stopped = false;
  private lastSweepFailureLogMs = -Infinity;
  private readonly closedBy: Record<string, number> = {};
  private readonly metrics;

  constructor(
    readonly ports: AlpacaStreamPorts,
    options: Partial<LiveStreamOptions> = {},
  ) {
    // The native stream's options and defaults: one set of limits for both streams of a process.
    this.options = liveStreamOptions(options);
    const registry = ports.metrics;
    this.metrics = {
      connections: gauge(registry, 'papertrade_alpaca_stream_connections', 'Open Alpaca trade_updates stream connections'),
      updatesSent: counter(registry, 'papertrade_alpaca_stream_updates_sent_total', 'Trade updates sent to Alpaca stream clients'),
      closed: counter(registry, 'papertrade_alpaca_stream_closed_total', 'Alpaca stream connections closed by the server, by reason', ['reason']),
      catchUps: counter(registry, 'papertrade_alpaca_stream_sweep_catch_ups_total', 'Alpaca stream connections the sweep found behind the log'),
    };
  }

  /** Subscribes to the bus (retried by the sweep if it fails) and starts the sweep and the heartbeat. */
  async start(): Promise<void> {
    await this.subscribeBus();
    this.sweepTimer = setInterval(() => void this.sweep(), this.options.sweepIntervalMs);
    this.pingTimer = setInterval(() => this.heartbeat(), this.options.pingIntervalMs);
  }

  /** Closes every connection (1001), waiting up to the shutdown grace, and lets go of the bus. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.sweepTimer);
    clearInterval(this.pingTimer);
    await this.subscribing;
    const closing = [...this.connections].map((c) => c.closeAndWait(CLOSE_GOING_AWAY, 'server shutting down', this.options.shutdownGraceMs));
    await Promise.all([...closing, this.unsubscribeBus?.()]);
    this.unsubscribeBus = undefined;
  }

  /** True when a new connection would be refused (checked before the upgrade). */
  get full(): boolean {
    return this.stopped || this.connections.size >= this.options.connectionsMax;
  }

  stats(): AlpacaStreamStats {
    return {
      connections: this.connections.size,
      subscribedUsers: this.byUser.size,
      busSubscribed: this.unsubscribeBus !== undefined,
      sweeps: this.sweepCount,
      closedBy: { ...this.closedBy },
    };
  }

  /** Takes an upgraded socket with the credential its upgrade request carried. */
  accept(ws: WebSocket, credential: UpgradeCredential): void {
    if (this.full) {
      // Another upgrade passed the check at the same time; the limit holds all the same.
      ws.close(CLOSE_TRY_AGAIN_LATER, 'too many connections, try again later');
      return;
    }
    const connection = new AlpacaConnection(this, ws);
    this.connections.add(connection);
    this.metrics.connections.set(this.connections.size);
    ws.on('close', () => this.forget(connection));
    connection.begin(credential);
  }

  // -- used by the connections ------------------------------------------------------------------

  /** @internal */
  addSubscription(subscription: TradeSubscription): void {
    let set = this.byUser.get(subscription.userId);
    if (!set) this.byUser.set(subscription.userId, (set = new Set()));
    set.add(subscription);
  }

  /** @internal */
  removeSubscription(subscription: TradeSubscription): void {
    subscription.cursor.stop();
    const set = this.byUser.get(subscription.userId);
    if (!set) return;
    set.delete(subscription);
    if (set.size === 0) this.byUser.delete(subscription.userId);
  }

  /** @internal */
  countClose(reason: string): void {
    this.closedBy[reason] = (this.closedBy[reason] ?? 0) + 1;
    this.metrics.closed.inc({ reason });
  }

  /** @internal */
  countSent(): void {
    this.metrics.updatesSent.inc();
  }

  /**
   * @internal An event as the connections take it. A trade update that cannot be rendered (data
   * of a shape this code does not know) is logged and passed over, so the stream goes on.
   */
  toItem(e: EventRecord): TradeItem {
    try {
      return { seq: e.seq, frame: tradeUpdateFrame(e) };
    } catch (err) {
      this.ports.logger.error({ err, userId: e.userId, seq: e.seq, type: e.type }, 'alpaca stream: an event could not be rendered as a trade update');
      return { seq: e.seq, frame: undefined };
    }
  }

  // -- internals ---------------------------------------------------------------------------------

  private forget(connection: AlpacaConnection): void {
    connection.release();
    this.connections.delete(connection);
    this.metrics.connections.set(this.connections.size);
  }

  private subscribeBus(): Promise<void> {
    this.subscribing ??= (async () => {
      try {
        if (!this.unsubscribeBus && !this.stopped) this.unsubscribeBus = await this.ports.bus.subscribe((events) => this.onEvents(events));
      } catch (err) {
        // The sweep keeps the updates whole meanwhile (from the log, a sweep later).
        this.ports.logger.warn({ err }, 'alpaca stream: subscribing to the event bus failed; retrying at the next sweep');
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
      // Rendered once, whatever the number of the user's connections.
      const item = this.toItem(e);
      for (const s of subscriptions) {
        try {
          s.cursor.onLive(item);
        } catch (err) {
          // A bug in one connection's sequence must not starve the others of the event.
          this.ports.logger.error({ err, userId: e.userId, seq: e.seq }, 'alpaca stream: an event could not be dispatched');
        }
      }
    }
  }

  private async sweep(): Promise<void> {
    if (this.sweeping || this.stopped) return;
    this.sweeping = true;
    try {
      if (!this.unsubscribeBus) void this.subscribeBus();
      await sweepSubscriptions(this.ports.events, this.byUser, this.options.sweepUsersMax, () => this.stopped, () => this.metrics.catchUps.inc());
      this.sweepCount += 1;
    } catch (err) {
      const now = Date.now();
      if (now - this.lastSweepFailureLogMs >= 60_000) {
        this.lastSweepFailureLogMs = now;
        this.ports.logger.warn({ err }, 'alpaca stream: the sweep could not read the event log; connections catch up when it answers');
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
class AlpacaConnection {
  private user: { userId: string; keyId: string } | undefined;
  private authenticating = false;
  /** The deadline passed while an authentication was in flight: decided when it ends. */
  private authDeadlinePassed = false;
  private authTimer: NodeJS.Timeout | undefined;
  private subscription: TradeSubscription | undefined;
  private readonly rate: ClientMessageRate;
  /**
   * The socket's pacing, heartbeat and message queue, as the native stream's (messages are
   * handled one at a time, in order: a listen waits for the log). Frames are binary.
   */
  private readonly session: SocketSession;

  constructor(
    private readonly hub: AlpacaStream,
    private readonly ws: WebSocket,
  ) {
    this.rate = new ClientMessageRate(hub.options.clientMessagesPerSecondMax);
    this.session = new SocketSession(
      ws,
      hub.options,
      { onSlow: () => this.closeSlow(), onPingTimeout: () => this.hub.countClose('ping_timeout'), onTaskError: (err) => this.sendError(err) },
      true,
    );
  }

  private get closed(): boolean {
    return this.session.closed;
  }

  private get options(): LiveStreamOptions {
    return this.hub.options;
  }

  begin(credential: UpgradeCredential): void {
    this.ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    this.authTimer = setTimeout(() => this.onAuthDeadline(), this.options.authTimeoutMs);
    // Credentials in the upgrade's headers (APCA-API-KEY-ID and APCA-API-SECRET-KEY, or a
    // bearer token) authenticate at once; without them the client sends `authenticate`.
    if (credential.present) this.session.enqueue(() => this.authenticate(credential.token));
  }

  heartbeat(): void {
    this.session.heartbeat();
  }

  /** Called once the socket has closed: nothing of this connection stays registered. */
  release(): void {
    this.session.closed = true;
    clearTimeout(this.authTimer);
    this.dropSubscription();
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

  /** Sends one trade update; false asks a replay to wait (`ready`). Cuts a client too far behind. */
  private sendUpdate(frame: Buffer): boolean {
    if (this.closed) return true;
    const room = this.session.sendPaced(frame);
    this.hub.countSent();
    return room;
  }

  /** A reply or an error: small, never held back. */
  private sendControl(frame: Buffer): void {
    this.session.sendControl(frame);
  }

  private closeSlow(): void {
    if (this.closed) return;
    // Alpaca sends an error before it closes a connection; the client resumes with since_seq.
    this.ws.send(errorFrame({ code: 'SLOW_CONSUMER', message: 'too far behind: reconnect and listen with since_seq, the seq of the last update received', service: 'alpaca' }), BINARY_FRAME);
    this.close(CLOSE_SLOW_CONSUMER, 'too far behind: reconnect and resume with since_seq', 'slow_consumer');
  }

  private sendError(err: unknown): void {
    if (err instanceof AppError) return this.sendControl(errorFrame(err));
    if (isUnavailableError(err)) {
      this.hub.ports.logger.warn({ err }, 'alpaca stream: a dependency is unavailable');
      return this.sendControl(errorFrame({ code: 'SERVICE_UNAVAILABLE', message: 'a dependency is unavailable, try again', service: 'alpaca' }));
    }
    this.hub.ports.logger.error({ err }, 'alpaca stream: unhandled error');
    this.sendControl(errorFrame({ code: 'INTERNAL', message: 'internal server error', service: 'alpaca' }));
  }

  // -- receiving ---------------------------------------------------------------------------------

  private onMessage(data: RawData, _isBinary: boolean): void {
    if (this.closed) return;
    // The socket's maxPayload is the process's (the native stream sets it); this stream's own
    // limit holds when it is lower.
    if (byteLength(data) > this.options.messageBytesMax) {
      this.close(CLOSE_MESSAGE_TOO_BIG, `messages are at most ${this.options.messageBytesMax} bytes`, 'message_too_big');
      return;
    }
    const admitted = this.rate.admit(this.session.queued >= this.options.clientMessagesQueuedMax);
    if (admitted !== 'read') {
      // One refusal per window says why; the rest of a flood is dropped unanswered.
      if (admitted === 'refuse') {
        const message = `at most ${this.options.clientMessagesPerSecondMax} messages a second and ${this.options.clientMessagesQueuedMax} waiting; messages past it are not read`;
        this.sendControl(errorFrame(new AlpacaStreamError('RATE_LIMITED', message, { retry_after_s: 1 })));
      }
      return;
    }
    // JSON arrives as text or binary frames alike (Alpaca's SDKs send text).
    const text = rawText(data);
    this.session.enqueue(() => this.handle(text));
  }

  private async handle(text: string): Promise<void> {
    const message = parseAlpacaMessage(text);
    switch (message.action) {
      case 'authenticate':
        return this.authenticate(message.token);
      case 'listen':
        return this.listen(message);
    }
  }

  private onAuthDeadline(): void {
    if (this.user || this.closed) return;
    if (this.authenticating) {
      this.authDeadlinePassed = true;
      return;
    }
    this.closeAuthTimeout();
  }

  private closeAuthTimeout(): void {
    this.sendControl(errorFrame(new AlpacaStreamError('UNAUTHENTICATED', `authentication timed out: send authenticate within ${this.options.authTimeoutMs} ms of connecting`)));
    this.close(CLOSE_AUTH_TIMEOUT, 'authentication timed out', 'auth_timeout');
  }

  /**
   * Alpaca's authentication: `authorized`, or `unauthorized` and the connection closed (4003).
   * Only a user's key has trade updates; the admin token and teacher keys are refused with a
   * reason. An authenticated connection may authenticate again as the same user (it is
   * answered `authorized` again); another account's key is refused like a wrong one.
   */
  private async authenticate(token: string | undefined): Promise<void> {
    let principal: AlpacaStreamPrincipal | undefined;
    if (token !== undefined) {
      this.authenticating = true;
      try {
        principal = await this.hub.ports.authenticate(token);
      } catch (err) {
        this.authenticating = false;
        if (this.authDeadlinePassed && !this.user) this.closeAuthTimeout();
        throw err;
      }
      this.authenticating = false;
    }
    if (this.closed) return;
    let refusal: string | undefined;
    if (!principal) refusal = 'invalid key_id or secret_key';
    else if (principal.kind === 'admin') refusal = "the admin token has no trade updates: authenticate with a user's key_id and secret_key";
    else if (principal.kind === 'teacher') refusal = "a teacher key has no trade updates: authenticate with a user's key_id and secret_key";
    else if (this.user && this.user.userId !== principal.userId) refusal = 'this connection is authenticated for another account';
    if (refusal !== undefined || principal?.kind !== 'user') {
      this.sendControl(authorizationFrame('authenticate', 'unauthorized', refusal));
      this.close(CLOSE_AUTH_FAILED, 'unauthorized', 'auth_failed');
      return;
    }
    this.user ??= { userId: principal.userId, keyId: principal.keyId };
    clearTimeout(this.authTimer);
    this.sendControl(authorizationFrame('authenticate', 'authorized'));
  }

  /**
   * Sets the streams followed, and answers `listening` every time. `trade_updates` without
   * since_seq keeps a running subscription where it is (a repeated listen is acknowledged again
   * and nothing is sent twice), or starts one at the user's last seq (live updates only); with
   * since_seq it (re)starts after that seq, the missed updates first. A listen without
   * trade_updates stops the updates. Everything is checked before anything changes, so a
   * refused listen leaves the previous subscription as it was. The new cursor is registered for
   * live events BEFORE the last seq is read: an event committed after that read is published
   * after it too, so it reaches the cursor live (or through the sweep).
   */
  private async listen(request: Extract<AlpacaClientMessage, { action: 'listen' }>): Promise<void> {
    if (!this.user) {
      // Alpaca's documented answer to a listen on a connection not authorized yet.
      this.sendControl(authorizationFrame('listen', 'unauthorized', 'authenticate first: { "action": "authenticate", "data": { "key_id": "...", "secret_key": "..." } }'));
      return;
    }
    const userId = this.user.userId;
    const streams = availableStreams(request.streams);
    if (!streams.includes(TRADE_UPDATES)) {
      this.dropSubscription();
      return this.sendControl(listeningFrame(streams));
    }
    if (this.subscription && request.sinceSeq === undefined) return this.sendControl(listeningFrame(streams));

    const subscription = this.newSubscription(userId);
    this.hub.addSubscription(subscription);
    let position: { fromSeq: number; lastSeq: number; firstPage: TradeItem[] };
    try {
      const lastSeq = await this.hub.ports.events.lastSeq(userId);
      if (request.sinceSeq !== undefined && request.sinceSeq > lastSeq) throw new EventsSeqAheadError(userId, request.sinceSeq, lastSeq);
      const fromSeq = request.sinceSeq ?? lastSeq;
      // The first page is read now, so events past retention refuse the listen itself.
      const firstPage = fromSeq < lastSeq ? (await this.hub.ports.events.readAfter(userId, fromSeq, this.options.replayPageSize)).map((e) => this.hub.toItem(e)) : [];
      position = { fromSeq, lastSeq, firstPage };
    } catch (err) {
      this.hub.removeSubscription(subscription);
      throw err;
    }
    if (this.closed) {
      this.hub.removeSubscription(subscription);
      return;
    }
    this.dropSubscription();
    this.subscription = subscription;
    this.sendControl(listeningFrame(streams, request.sinceSeq !== undefined ? { sinceSeq: position.fromSeq, lastSeq: position.lastSeq } : undefined));
    subscription.cursor.start(position.fromSeq, position.lastSeq, position.firstPage);
  }

  private newSubscription(userId: string): TradeSubscription {
    const subscription: TradeSubscription = {
      userId,
      sweptSeq: undefined,
      cursor: new EventCursor<TradeItem>({
        read: async (afterSeq, limit) => (await this.hub.ports.events.readAfter(userId, afterSeq, limit)).map((e) => this.hub.toItem(e)),
        // Events that are not trade updates advance the position without a frame.
        deliver: (item) => (item.frame === undefined ? true : this.sendUpdate(item.frame)),
        ready: () => this.session.ready(),
        onReadError: (err) => this.onCatchUpError(subscription, err),
        pageSize: this.options.replayPageSize,
        heldMax: this.options.heldEventsMax,
      }),
    };
    return subscription;
  }

  /**
   * A catch-up read failed. A refusal of the log (events removed by retention before the replay
   * reached them) ends the connection after an error saying so: the client must read its state
   * from the REST endpoints again. Anything else is transient, and the sweep retries.
   */
  private onCatchUpError(subscription: TradeSubscription, err: unknown): void {
    if (err instanceof AppError) {
      if (this.subscription === subscription) this.subscription = undefined;
      this.hub.removeSubscription(subscription);
      this.sendError(err);
      this.close(CLOSE_RESYNC_REQUIRED, 'events expired: read the account, positions and orders again, then listen', 'resync');
      return;
    }
    this.hub.ports.logger.debug({ err, userId: subscription.userId }, 'alpaca stream: a catch-up read failed; the sweep retries');
  }

  private dropSubscription(): void {
    if (!this.subscription) return;
    this.hub.removeSubscription(this.subscription);
    this.subscription = undefined;
  }
}

function byteLength(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.length, 0);
  return data.byteLength;
}
