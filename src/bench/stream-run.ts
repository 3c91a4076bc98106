/**
 * The I/O of `papertrade bench --stream` (the pure parts are stream.ts; the sequence is in
 * bench.ts): a fleet of WebSocket clients of the live stream in the bench process, the api's
 * memory and stream counters, what the event log holds for the clients' users, and the phases —
 * connect N clients, read the api idle, run the market-order load with them listening, check
 * that every event arrived, close them.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type pg from 'pg';
import WebSocket from 'ws';
import { errorCode } from './load.js';
import { readStatusKb } from './processes.js';
import { gaugeValue, metricSamples, minMedian } from './resting.js';
import { forcedGcReading, inspectorUrl } from './resting-run.js';
import { LatencyRecorder } from './stats.js';
import { summarize } from './report.js';
import {
  fanOut,
  MsHistogram,
  perConnection,
  readStreamMessage,
  SeqTracker,
  streamCpu,
  summarizeMs,
  summarizeSeqs,
  tickersFor,
  type ApiMemory,
  type MarketFigures,
  type ServerCounts,
  type StreamMarket,
  type StreamOptions,
  type StreamPart,
  type StreamPhase,
} from './stream.js';

/** Clients connecting at the same time. */
export const STREAM_CONNECT_CONCURRENCY = 100;
/** One client's connect + subscribe may take this long before it counts as failed. */
export const STREAM_CONNECT_TIMEOUT_MS = 30_000;
/**
 * No new client is started after this long (a minute, plus 20 ms a client: 5,000 may take 160 s),
 * nor once this many have failed: an api that cannot take more should not hold the run for
 * an hour of timeouts. The phase goes on with the clients connected.
 */
export const streamConnectDeadlineMs = (clients: number) => 60_000 + clients * 20;
export const streamConnectFailuresMax = (clients: number) => Math.max(20, Math.ceil(clients * 0.05));
/** After the last client subscribed, the api idles this long (prices flowing) before its memory is read. */
export const STREAM_IDLE_SETTLE_MS = 2_000;
/** RSS samples of one memory reading, this far apart (their median is the reading). */
export const STREAM_RSS_SAMPLES = 8;
export const STREAM_RSS_SAMPLE_MS = 250;
/** After the drain, how long every client may take to reach its user's last seq. */
export const STREAM_CATCH_UP_WAIT_MS = 15_000;
const CATCH_UP_POLL_MS = 100;
/** How long the clients and the api may take to close every connection between phases. */
export const STREAM_CLOSE_WAIT_MS = 15_000;
/** A connection the server closed is resubscribed (since_seq) at most this often per client, this long after the close. */
export const STREAM_RECONNECTS_MAX = 5;
const RECONNECT_DELAY_MS = 250;
/** The bench's event-loop delay is sampled at this resolution (ms). */
const EVENT_LOOP_RESOLUTION_MS = 10;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const countIn = (record: Record<string, number>, key: string) => (record[key] = (record[key] ?? 0) + 1);

export interface StreamUser {
  id: string;
  /** `Bearer <api key>`. */
  authorization: string;
}

interface FleetClient {
  /** Its place in the fleet (events received are tagged with it). */
  index: number;
  user: StreamUser;
  tickers: string[];
  seqs: SeqTracker;
  ws: WebSocket | undefined;
  /** Subscribed on its current socket. */
  live: boolean;
  /** The subscribe this client waits for the reply of. */
  waiting: { resolve: () => void; reject: (err: Error) => void } | undefined;
  reconnectsLeft: number;
  /** A resubscription is scheduled or under way. */
  reconnecting: boolean;
}

export interface ConnectResult {
  attempted: number;
  connected: number;
  errors: Record<string, number>;
  totalMs: number;
  perClient: LatencyRecorder;
  /** Why connecting stopped before every client was tried (null: all were). */
  stoppedBecause: string | null;
}

/**
 * N clients of `GET /ws`, one per user, each subscribed to its user's events and a few tickers.
 * What they receive is recorded on the spot: each event's `at` and receipt time (kept, so the
 * window can be chosen afterwards, as the database's), each price's latency while the price
 * window is open (a histogram: millions of them), and every client's seqs. The message handler
 * reads only the head of an event (stream.ts readStreamMessage), so the client side costs as
 * little as it can.
 */
export class StreamFleet {
  readonly clients: FleetClient[] = [];
  /** Every distinct event received: its `at` and when it was read (epoch ms), and by which client. */
  readonly eventAtMs: number[] = [];
  readonly eventReadMs: number[] = [];
  readonly eventClient: number[] = [];
  readonly eventsByType: Record<string, number> = {};
  readonly priceLatency = new MsHistogram();
  private priceWindowFrom: number | undefined;
  /** How long the price window was open (ms). */
  priceWindowMs = 0;
  pricesReceived = 0;
  unreadable = 0;
  readonly serverErrors: Record<string, number> = {};
  readonly closesByCode: Record<string, number> = {};
  reconnects = 0;
  readonly reconnectErrors: Record<string, number> = {};
  private closing = false;

  constructor(private readonly wsUrl: string) {}

  /**
   * Connects and subscribes a client per user, `concurrency` at a time; failures are counted, not
   * thrown. Stops starting clients past `deadlineMs` or `failuresMax` failures.
   */
  async connect(
    users: readonly StreamUser[],
    tickers: (index: number) => string[],
    opts: { concurrency: number; deadlineMs: number; failuresMax: number; onSecond?: (done: number, connected: number, failed: number) => void },
  ): Promise<ConnectResult> {
    const perClient = new LatencyRecorder();
    const errors: Record<string, number> = {};
    let next = 0;
    let connected = 0;
    let failed = 0;
    let stoppedBecause: string | null = null;
    const started = performance.now();
    const deadline = started + opts.deadlineMs;
    const progress = setInterval(() => opts.onSecond?.(connected + failed, connected, failed), 1_000);
    const worker = async () => {
      while (next < users.length && stoppedBecause === null) {
        if (performance.now() > deadline) {
          stoppedBecause = `${opts.deadlineMs} ms passed with ${connected} of ${users.length} subscribed`;
          break;
        }
        const i = next++;
        const client: FleetClient = {
          index: i,
          user: users[i]!,
          tickers: tickers(i),
          seqs: new SeqTracker(),
          ws: undefined,
          live: false,
          waiting: undefined,
          reconnectsLeft: STREAM_RECONNECTS_MAX,
          reconnecting: false,
        };
        const t0 = performance.now();
        try {
          await this.subscribe(client, undefined);
          perClient.record(performance.now() - t0);
          this.clients.push(client);
          connected += 1;
        } catch (err) {
          countIn(errors, (err as Error).message);
          failed += 1;
          if (failed >= opts.failuresMax && stoppedBecause === null) stoppedBecause = `${failed} clients failed to connect`;
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(opts.concurrency, users.length) }, worker));
    } finally {
      clearInterval(progress);
    }
    return { attempted: next, connected, errors, totalMs: performance.now() - started, perClient, stoppedBecause };
  }

  /**
   * Resubscribes (since_seq) every client whose connection is down and not being resumed, as a
   * client would once the server answers again; resolves when every attempt has ended.
   */
  async resumeDropped(concurrency: number): Promise<void> {
    const down = this.clients.filter((c) => !c.live && !c.reconnecting);
    let next = 0;
    const worker = async () => {
      while (next < down.length && !this.closing) {
        const c = down[next++]!;
        c.reconnecting = true;
        try {
          await this.subscribe(c, c.seqs.lastSeq);
          this.reconnects += 1;
        } catch (err) {
          countIn(this.reconnectErrors, (err as Error).message);
        } finally {
          c.reconnecting = false;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, down.length) }, worker));
  }

  /** Clients subscribed right now. */
  get liveClients(): FleetClient[] {
    return this.clients.filter((c) => c.live);
  }

  /** Prices read from now on count in the latency and the rate (the steady window). */
  openPriceWindow(): void {
    this.priceWindowFrom = performance.now();
  }

  closePriceWindow(): void {
    if (this.priceWindowFrom === undefined) return;
    this.priceWindowMs += performance.now() - this.priceWindowFrom;
    this.priceWindowFrom = undefined;
  }

  /** Closes every client (1000), terminating those that have not closed within `timeoutMs`. */
  async close(timeoutMs: number): Promise<{ terminated: number }> {
    this.closing = true;
    const open = this.clients.map((c) => c.ws).filter((ws): ws is WebSocket => ws !== undefined && ws.readyState !== WebSocket.CLOSED);
    const closed = open.map((ws) => new Promise<void>((resolve) => ws.once('close', () => resolve())));
    for (const ws of open) {
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1000, 'bench phase over');
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(closed), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    let terminated = 0;
    for (const ws of open) {
      if (ws.readyState !== WebSocket.CLOSED) {
        ws.terminate();
        terminated += 1;
      }
    }
    return { terminated };
  }

  /** Opens a socket for the client and subscribes (from `sinceSeq` when resuming); resolves on `subscribed`. */
  private subscribe(c: FleetClient, sinceSeq: number | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(this.wsUrl, {
        headers: { authorization: c.user.authorization },
        perMessageDeflate: false,
        handshakeTimeout: STREAM_CONNECT_TIMEOUT_MS,
        // The server is papertrade itself: checking its UTF-8 would only add client-side CPU.
        skipUTF8Validation: true,
      });
      let settled = false;
      const settle = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        c.waiting = undefined;
        if (err) {
          ws.terminate();
          reject(err);
        } else {
          // Subscribed after the fleet began closing (a resumption in flight): close it too.
          if (this.closing) ws.close(1000, 'bench phase over');
          resolve();
        }
      };
      const timer = setTimeout(() => settle(new Error('no subscribed reply in time')), STREAM_CONNECT_TIMEOUT_MS);
      c.ws = ws;
      c.live = false;
      c.waiting = { resolve: () => settle(), reject: (err) => settle(err) };
      ws.on('unexpected-response', (req, res) => {
        res.resume();
        settle(new Error(`HTTP ${res.statusCode ?? '?'}`));
        req.destroy();
      });
      ws.on('error', (err: Error & { code?: string }) => settle(new Error(err.code ?? err.message)));
      ws.on('open', () => {
        ws.send(JSON.stringify({ action: 'subscribe', id: 'bench', events: true, tickers: c.tickers, ...(sinceSeq !== undefined ? { since_seq: sinceSeq } : {}) }));
      });
      ws.on('message', (data, isBinary) => this.onMessage(c, data, isBinary));
      ws.on('close', (code) => {
        if (!settled) settle(new Error(`closed ${code} before subscribed`));
        else this.onClose(c, ws, code);
      });
    });
  }

  private onMessage(c: FleetClient, data: WebSocket.RawData, isBinary: boolean): void {
    const readMs = Date.now();
    if (isBinary) {
      this.unreadable += 1;
      return;
    }
    const text = Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data).toString('utf8');
    const m = readStreamMessage(text);
    switch (m.kind) {
      case 'price':
        this.pricesReceived += 1;
        if (this.priceWindowFrom !== undefined) this.priceLatency.record(readMs - m.asOfMs);
        return;
      case 'event':
        if (c.seqs.onEvent(m.seq) === 'duplicate') return;
        this.eventAtMs.push(m.atMs);
        this.eventReadMs.push(readMs);
        this.eventClient.push(c.index);
        countIn(this.eventsByType, m.type);
        return;
      case 'reply':
        if (m.type === 'subscribed' && c.waiting) {
          const from = Number(m.body.from_seq ?? m.body.last_seq);
          if (!Number.isSafeInteger(from)) {
            c.waiting.reject(new Error('subscribed without from_seq'));
            return;
          }
          if (c.seqs.started) c.seqs.resume(from);
          else c.seqs.start(from);
          c.live = true;
          c.waiting.resolve();
        } else if (m.type === 'error') {
          const code = errorCode(JSON.stringify(m.body));
          countIn(this.serverErrors, code);
          c.waiting?.reject(new Error(`error ${code}`));
        }
        return;
      case 'unreadable':
        this.unreadable += 1;
    }
  }

  /** The server closed a subscribed connection: counted, and resumed from the last seq, as a client should. */
  private onClose(c: FleetClient, ws: WebSocket, code: number): void {
    if (ws !== c.ws || !c.live) return;
    c.live = false;
    if (this.closing) return;
    countIn(this.closesByCode, String(code));
    if (c.reconnectsLeft <= 0 || c.reconnecting) return;
    c.reconnectsLeft -= 1;
    c.reconnecting = true;
    setTimeout(() => {
      if (this.closing) {
        c.reconnecting = false;
        return;
      }
      this.subscribe(c, c.seqs.lastSeq)
        .then(
          () => void (this.reconnects += 1),
          (err: Error) => void countIn(this.reconnectErrors, err.message),
        )
        .finally(() => (c.reconnecting = false));
    }, RECONNECT_DELAY_MS);
  }
}

// ---------------------------------------------------------------------------------------------
// The api: its stream counters and its memory

export interface WsCounters {
  connections: number | undefined;
  eventsSent: number | undefined;
  pricesSent: number | undefined;
  closed: Record<string, number>;
  catchUps: number | undefined;
}

/** The api's papertrade_ws_* series from /metrics. */
export async function wsCounters(origin: string): Promise<WsCounters> {
  const res = await fetch(`${origin}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
  const text = await res.text();
  const closed: Record<string, number> = {};
  for (const s of metricSamples(text, 'papertrade_ws_closed_total')) {
    const reason = /(?:^|,)reason="([^"]*)"/.exec(s.labels)?.[1] ?? '';
    closed[reason] = (closed[reason] ?? 0) + s.value;
  }
  return {
    connections: gaugeValue(text, 'papertrade_ws_connections'),
    eventsSent: gaugeValue(text, 'papertrade_ws_events_sent_total'),
    pricesSent: gaugeValue(text, 'papertrade_ws_prices_sent_total'),
    closed,
    catchUps: gaugeValue(text, 'papertrade_ws_sweep_catch_ups_total'),
  };
}

/** What the server counted between two scrapes. */
export function serverCounts(a: WsCounters | undefined, b: WsCounters | undefined): ServerCounts {
  const d = (x: number | undefined, y: number | undefined) => (x === undefined || y === undefined ? null : y - x);
  const closedByReason: Record<string, number> = {};
  if (a && b) {
    for (const [reason, n] of Object.entries(b.closed)) {
      const delta = n - (a.closed[reason] ?? 0);
      if (delta > 0) closedByReason[reason] = delta;
    }
  }
  return { eventsSent: d(a?.eventsSent, b?.eventsSent), pricesSent: d(a?.pricesSent, b?.pricesSent), closedByReason, sweepCatchUps: d(a?.catchUps, b?.catchUps) };
}

/**
 * The api's memory now: heapUsed + external after forced full GCs through its inspector (when
 * there is one), then the median of STREAM_RSS_SAMPLES RSS samples, and its connection gauge.
 * The GC comes first: after a market-order window the heap holds its garbage, and the GC gives
 * pages back to the system, so an RSS read before it would be of the garbage, not the clients.
 */
async function apiMemory(pid: number, origin: string, gc: () => Promise<number | null>): Promise<ApiMemory> {
  const heapAfterGcBytes = await gc();
  const rss: number[] = [];
  for (let i = 0; i < STREAM_RSS_SAMPLES; i++) {
    const kb = readStatusKb(pid, 'VmRSS');
    if (kb !== undefined) rss.push(kb * 1024);
    await sleep(STREAM_RSS_SAMPLE_MS);
  }
  const counters = await wsCounters(origin).catch(() => undefined);
  return { rssMedianBytes: minMedian(rss)?.median ?? null, rssSamples: rss.length, heapAfterGcBytes, serverConnections: counters?.connections ?? null };
}

// ---------------------------------------------------------------------------------------------
// The event log

/** Each user's last seq (event_counters; a user without events is left out: 0). */
async function lastSeqs(pool: pg.Pool, userIds: readonly string[]): Promise<Map<string, number>> {
  const { rows } = await pool.query<{ user_id: string; last_seq: string }>('SELECT user_id, last_seq::text FROM event_counters WHERE user_id = ANY($1::uuid[])', [userIds]);
  return new Map(rows.map((r) => [r.user_id, Number(r.last_seq)]));
}

/** Per user of the clients: its events after the subscription's start, and of those with `at` in [startMs, endMs). */
async function clientEvents(
  pool: pg.Pool,
  clients: readonly FleetClient[],
  startMs: number,
  endMs: number,
): Promise<Map<string, { since: number; inWindow: number }>> {
  const started = clients.filter((c) => c.seqs.fromSeq !== undefined);
  const { rows } = await pool.query<{ user_id: string; since: string; in_window: string }>(
    `SELECT s.user_id, count(e.seq)::text AS since, count(e.seq) FILTER (WHERE e.at >= $3 AND e.at < $4)::text AS in_window
       FROM unnest($1::uuid[], $2::bigint[]) AS s (user_id, from_seq)
       LEFT JOIN events e ON e.user_id = s.user_id AND e.seq > s.from_seq
      GROUP BY s.user_id`,
    [started.map((c) => c.user.id), started.map((c) => c.seqs.fromSeq), new Date(startMs), new Date(endMs)],
  );
  return new Map(rows.map((r) => [r.user_id, { since: Number(r.since), inWindow: Number(r.in_window) }]));
}

/** Every user's events with `at` in [startMs, endMs). */
async function eventsWritten(pool: pg.Pool, startMs: number, endMs: number): Promise<number | null> {
  try {
    const { rows } = await pool.query<{ n: string }>('SELECT count(*)::text AS n FROM events WHERE at >= $1 AND at < $2', [new Date(startMs), new Date(endMs)]);
    return Number(rows[0]!.n);
  } catch {
    // A build without the event log: nothing to count.
    return null;
  }
}

/**
 * Waits (bounded) until every subscribed client has its user's last seq; how long it took (null:
 * not within) and how many are still behind.
 */
async function waitCaughtUp(pool: pg.Pool, fleet: StreamFleet, timeoutMs: number): Promise<{ ms: number | null; behind: number }> {
  const started = performance.now();
  const ids = fleet.clients.map((c) => c.user.id);
  for (;;) {
    const last = await lastSeqs(pool, ids);
    const behind = fleet.liveClients.filter((c) => c.seqs.lastSeq < (last.get(c.user.id) ?? 0)).length;
    const ms = performance.now() - started;
    if (behind === 0) return { ms: Math.round(ms), behind };
    if (ms > timeoutMs) return { ms: null, behind };
    await sleep(CATCH_UP_POLL_MS);
  }
}

// ---------------------------------------------------------------------------------------------
// The phases

/** A market-order measurement as bench.ts hands it over. */
export interface MarketInput {
  figures: MarketFigures;
  windowStartMs: number;
  windowEndMs: number;
}

export interface StreamRunInput {
  options: StreamOptions;
  origin: string;
  pool: pg.Pool;
  /** One per client of the largest phase; the load's users first. */
  users: readonly StreamUser[];
  loadUsers: number;
  /** Tickers the clients' subscriptions rotate over (the traded ones first). */
  tickerPool: readonly string[];
  /** The process serving /ws (its name in the CPU rows, its pid, its log with the inspector's URL). */
  api: { name: string; pid: number; logFile: string };
  /** The bench's row in the CPU rows. */
  benchProcess: string;
  durationS: number;
  baseline: MarketInput;
  /** One market-order window, as the plain bench runs it, with hooks at the steady window's edges. */
  runMarket(label: string, hooks: { onSteadyStart: () => Promise<void>; onSteadyEnd: () => Promise<void> }): Promise<MarketInput>;
  say(line: string): void;
  status(line: string, force?: boolean): void;
  endStatus(): void;
  /** Why the run must stop (a papertrade process died), if it must. */
  abort(): string | undefined;
}

function marketOf(label: string, m: MarketInput, written: number | null, durationS: number, apiName: string, benchName: string): StreamMarket {
  return {
    label,
    windowStartMs: m.windowStartMs,
    windowEndMs: m.windowEndMs,
    figures: m.figures,
    cpu: streamCpu(m.figures.processes, apiName, benchName),
    eventsWritten: written,
    eventsWrittenPerS: written === null ? null : written / durationS,
  };
}

/** The baseline's figures, then for each client count: connect, idle reading, a market-order window with them, the loss check, close. */
export async function runStreamPhases(input: StreamRunInput): Promise<StreamPart> {
  const { options, origin, pool, say } = input;
  const check = () => {
    const reason = input.abort();
    if (reason) throw new Error(`the stream scenario stopped: ${reason}`);
  };
  const baseline = marketOf(
    'no client (baseline)',
    input.baseline,
    await eventsWritten(pool, input.baseline.windowStartMs, input.baseline.windowEndMs),
    input.durationS,
    input.api.name,
    input.benchProcess,
  );

  const inspector = inspectorUrl(input.api.logFile);
  let gcNote: string | null = inspector ? null : `no inspector URL in ${input.api.logFile}: no forced-GC reading`;
  const gc = async (): Promise<number | null> => {
    if (!inspector || gcNote) return null;
    try {
      const r = await forcedGcReading(inspector);
      return r.heapUsed + r.external;
    } catch (err) {
      gcNote = `the forced GC through the inspector failed: ${(err as Error).message}`;
      return null;
    }
  };
  const wsUrl = `${origin.replace(/^http/, 'ws')}/ws`;
  const phases: StreamPhase[] = [];
  for (const n of options.clients) {
    check();
    if (n > input.users.length) throw new Error(`${n} clients but only ${input.users.length} users`);
    say(`stream: ${n} clients — the api's memory with no client...`);
    const before = await apiMemory(input.api.pid, origin, gc);
    const benchRssBefore = process.memoryUsage().rss;

    say(`stream: connecting ${n} clients (${STREAM_CONNECT_CONCURRENCY} at a time), each subscribed to its user's events and ${options.tickers} tickers...`);
    const fleet = new StreamFleet(wsUrl);
    let connectSeconds = 0;
    const conn = await fleet.connect(input.users.slice(0, n), (i) => tickersFor(i, options.tickers, input.tickerPool), {
      concurrency: STREAM_CONNECT_CONCURRENCY,
      deadlineMs: streamConnectDeadlineMs(n),
      failuresMax: streamConnectFailuresMax(n),
      onSecond: (done, ok, failed) => input.status(`[connecting] ${done}/${n}  subscribed ${ok}  failed ${failed}`, ++connectSeconds % 10 === 0),
    });
    input.endStatus();
    say(
      `  ${conn.connected}/${n} subscribed in ${Math.round(conn.totalMs)} ms` +
        (Object.keys(conn.errors).length ? `; failures: ${JSON.stringify(conn.errors)}` : '') +
        (conn.stoppedBecause ? `; stopped connecting: ${conn.stoppedBecause}` : '') +
        `; idle ${STREAM_IDLE_SETTLE_MS / 1000} s, then the api's memory...`,
    );
    await sleep(STREAM_IDLE_SETTLE_MS);
    const idle = await apiMemory(input.api.pid, origin, gc);
    const benchRssIdle = process.memoryUsage().rss;
    check();

    const eventLoop = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS });
    let countersStart: WsCounters | undefined;
    let countersEnd: WsCounters | undefined;
    const market = await input.runMarket(`with ${n} WebSocket clients`, {
      onSteadyStart: async () => {
        fleet.openPriceWindow();
        eventLoop.enable();
        countersStart = await wsCounters(origin).catch(() => undefined);
      },
      onSteadyEnd: async () => {
        fleet.closePriceWindow();
        eventLoop.disable();
        countersEnd = await wsCounters(origin).catch(() => undefined);
      },
    });
    // Connections the server closed and that are not back yet: resumed now, as a client would.
    const down = fleet.clients.length - fleet.liveClients.length;
    if (down > 0) {
      say(`stream: resubscribing ${down} clients whose connections the server closed...`);
      await fleet.resumeDropped(STREAM_CONNECT_CONCURRENCY);
    }
    say('stream: waiting until every client has its user\'s last event...');
    const caught = await waitCaughtUp(pool, fleet, STREAM_CATCH_UP_WAIT_MS);
    const db = await clientEvents(pool, fleet.clients, market.windowStartMs, market.windowEndMs);
    const written = await eventsWritten(pool, market.windowStartMs, market.windowEndMs);

    const commit = new MsHistogram();
    const inWindowByClient = new Map<number, number>();
    let readInWindow = 0;
    for (let i = 0; i < fleet.eventAtMs.length; i++) {
      const at = fleet.eventAtMs[i]!;
      const read = fleet.eventReadMs[i]!;
      if (at >= market.windowStartMs && at < market.windowEndMs) {
        const c = fleet.eventClient[i]!;
        inWindowByClient.set(c, (inWindowByClient.get(c) ?? 0) + 1);
        commit.record(read - at);
      }
      if (read >= market.windowStartMs && read < market.windowEndMs) readInWindow += 1;
    }
    // Received against the log, client by client: a subscribed client that lacks an event lost
    // it; one still down at the end has its events waiting in the log (withheld, not lost).
    const tally = { dbSince: 0, dbInWindow: 0, received: 0, receivedInWindow: 0, lost: 0, withheld: 0, down: 0 };
    for (const c of fleet.clients) {
      const expected = db.get(c.user.id) ?? { since: 0, inWindow: 0 };
      const short = Math.max(0, expected.since - c.seqs.received);
      if (!c.live) {
        tally.down += 1;
        tally.withheld += short;
        continue;
      }
      tally.dbSince += expected.since;
      tally.dbInWindow += expected.inWindow;
      tally.received += c.seqs.received;
      tally.receivedInWindow += inWindowByClient.get(c.index) ?? 0;
      tally.lost += short;
    }
    const seqs = summarizeSeqs(fleet.clients.map((c) => c.seqs));
    const eventsPerS = readInWindow / input.durationS;
    const pricesPerS = fleet.priceWindowMs > 0 ? fleet.priceLatency.count / (fleet.priceWindowMs / 1000) : 0;
    const m = marketOf(`with ${n} WebSocket clients`, market, written, input.durationS, input.api.name, input.benchProcess);
    const loadUsers = new Set(input.users.slice(0, input.loadUsers).map((u) => u.id));
    const phase: StreamPhase = {
      clients: n,
      tickersPerClient: options.tickers,
      clientsOfTradingUsers: fleet.clients.filter((c) => loadUsers.has(c.user.id)).length,
      connect: {
        connected: conn.connected,
        attempted: conn.attempted,
        stoppedBecause: conn.stoppedBecause,
        errors: conn.errors,
        concurrency: STREAM_CONNECT_CONCURRENCY,
        totalMs: Math.round(conn.totalMs),
        perS: conn.totalMs > 0 ? conn.connected / (conn.totalMs / 1000) : 0,
        perClientMs: summarize(conn.perClient.percentiles()),
      },
      memory: {
        before,
        idle,
        rssPerConnectionBytes: perConnection(before.rssMedianBytes, idle.rssMedianBytes, conn.connected),
        heapPerConnectionBytes: perConnection(before.heapAfterGcBytes, idle.heapAfterGcBytes, conn.connected),
        benchRssPerClientBytes: perConnection(benchRssBefore, benchRssIdle, conn.connected),
        idleSettleMs: STREAM_IDLE_SETTLE_MS,
      },
      market: m,
      delivery: {
        commitToDeliveryMs: summarizeMs(commit),
        commitToDeliveryMeanMs: commit.meanMs,
        tickToDeliveryMs: summarizeMs(fleet.priceLatency),
        tickToDeliveryMeanMs: fleet.priceLatency.meanMs,
        negativeLatencies: commit.negative + fleet.priceLatency.negative,
        eventsPerS,
        pricesPerS,
        messagesPerS: eventsPerS + pricesPerS,
        eventsByType: { ...fleet.eventsByType },
        server: serverCounts(countersStart, countersEnd),
      },
      loss: {
        seqs,
        clientsDown: tally.down,
        withheld: tally.withheld,
        dbSinceSubscribe: tally.dbSince,
        receivedSinceSubscribe: tally.received,
        dbInWindow: tally.dbInWindow,
        receivedInWindow: tally.receivedInWindow,
        lost: tally.lost,
        caughtUpAfterMs: caught.ms,
        caughtUpWaitMs: STREAM_CATCH_UP_WAIT_MS,
        clientsBehind: caught.behind,
      },
      closes: { byCode: { ...fleet.closesByCode }, reconnects: fleet.reconnects, reconnectErrors: { ...fleet.reconnectErrors } },
      serverErrors: { ...fleet.serverErrors },
      unreadableMessages: fleet.unreadable,
      fanOut: fanOut(baseline.cpu, m.cpu, market.figures.db.acceptedPerS, eventsPerS + pricesPerS),
      bench: {
        eventLoopDelayP99Ms: eventLoop.count > 0 ? eventLoop.percentile(99) / 1e6 : null,
        eventLoopDelayMaxMs: eventLoop.count > 0 ? eventLoop.max / 1e6 : null,
      },
      filledRatio: baseline.figures.db.filledPerS > 0 ? market.figures.db.filledPerS / baseline.figures.db.filledPerS : null,
    };
    phases.push(phase);
    const d = phase.delivery;
    say(
      `  ${n} clients: commit → delivery p50 ${d.commitToDeliveryMs.p50} / p99 ${d.commitToDeliveryMs.p99} ms (${d.commitToDeliveryMs.count} events), ` +
        `tick → delivery p50 ${d.tickToDeliveryMs.p50} / p99 ${d.tickToDeliveryMs.p99} ms (${d.tickToDeliveryMs.count} prices); ` +
        `lost ${phase.loss.lost}, missing ${seqs.missing}, duplicated ${seqs.duplicates}; filled/s ${Math.round(market.figures.db.filledPerS)}`,
    );

    say(`stream: closing the ${n} clients...`);
    const { terminated } = await fleet.close(STREAM_CLOSE_WAIT_MS);
    if (terminated > 0) say(`  ${terminated} clients did not close in time: terminated`);
    let gauge: number | undefined;
    const deadline = performance.now() + STREAM_CLOSE_WAIT_MS;
    // The next phase's "no client" reading must see none: wait for the api to let go of them all.
    while (performance.now() < deadline) {
      gauge = (await wsCounters(origin).catch(() => undefined))?.connections;
      if (gauge === 0) break;
      await sleep(100);
    }
    if (gauge !== 0) say(`  note: the api still counts ${gauge ?? 'n/a'} connections ${STREAM_CLOSE_WAIT_MS} ms after the close`);
  }
  return {
    options,
    streamUsers: input.users.length,
    loadUsers: input.loadUsers,
    apiProcess: input.api.name,
    connectConcurrency: STREAM_CONNECT_CONCURRENCY,
    baseline,
    phases,
    gcNote,
  };
}
