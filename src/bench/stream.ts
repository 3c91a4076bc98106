/**
 * `papertrade bench --stream`: the pure parts of the live-stream scenario — its options, what a
 * client makes of a message (read without parsing the event's data), the seq bookkeeping that
 * shows whether anything was lost, an exact histogram of whole milliseconds, the fan-out
 * arithmetic, the targets and the report. The clients and the phases are stream-run.ts; the
 * sequence is in bench.ts.
 *
 * Both latencies are differences of two millisecond clocks of the same machine: the bench's
 * Date.now() when a message is read, less the `at` (events) or `as_of` (prices) it carries,
 * which the server renders in whole milliseconds (truncated). Every latency is therefore a
 * whole number of milliseconds, and a histogram with one bucket per millisecond is exact.
 */
import { LIVE_CONNECTIONS_MAX, LIVE_TICKERS_MAX } from '../services/events/live-stream.js';
import { machineLine, summarize, type BenchReport, type LatencySummary, type ProcessCpu } from './report.js';
import type { MarketPhase, TargetRow } from './resting.js';
import type { Percentiles } from './stats.js';

/** Client counts of the phases when --stream-clients is not given. */
export const STREAM_CLIENTS_DEFAULT = '1000,5000';
/** Tickers each client subscribes to when --stream-tickers is not given. */
export const STREAM_TICKERS_DEFAULT = 5;
/** One api process takes at most this many live connections (beyond, the upgrade gets a 503). */
export const STREAM_CLIENTS_MAX = LIVE_CONNECTIONS_MAX;
export const STREAM_TICKERS_MAX = LIVE_TICKERS_MAX;
/** Phases one run may have (each is a connect, an idle reading and a market-order window). */
export const STREAM_PHASES_MAX = 10;

/** The issue's targets. */
export const TARGET_DELIVERY_P99_MS = 100;
/** The client count the latency targets are stated at. */
export const TARGET_AT_CLIENTS = 1_000;
/** Filled orders/s with the event log ÷ the same run before it (two commits: not measured by --stream). */
export const TARGET_EVENT_LOG_RATIO = 0.9;

/** Latencies above this (10 minutes) are kept one by one instead of in the histogram's array. */
export const MS_HISTOGRAM_LIMIT = 600_000;

export interface StreamOptions {
  /** Client counts of the phases, in the order given. */
  clients: number[];
  tickers: number;
}

/** What the CLI hands over for the scenario (strings, as commander gives them). */
export interface RawStreamOptions {
  stream?: boolean;
  streamClients?: string;
  streamTickers?: string;
}

/**
 * The scenario's options, or null without --stream. `usage` makes the error thrown for a bad
 * value (the bench's usage error: exit 2 with the message).
 */
export function parseStreamOptions(raw: RawStreamOptions, usage: (message: string) => Error): StreamOptions | null {
  if (raw.stream !== true) {
    if (raw.streamClients !== undefined || raw.streamTickers !== undefined) throw usage('--stream-clients and --stream-tickers go with --stream');
    return null;
  }
  const list = (raw.streamClients ?? STREAM_CLIENTS_DEFAULT).replace(/\s+/g, '');
  if (!/^\d+(,\d+)*$/.test(list)) {
    throw usage(`--stream-clients must be a comma-separated list of client counts, e.g. 1000,5000 (got ${JSON.stringify(raw.streamClients)})`);
  }
  const clients = list.split(',').map(Number);
  if (clients.length > STREAM_PHASES_MAX) throw usage(`--stream-clients takes at most ${STREAM_PHASES_MAX} counts (one phase each)`);
  for (const n of clients) {
    if (n < 1 || n > STREAM_CLIENTS_MAX) {
      throw usage(`each --stream-clients count must be from 1 to ${STREAM_CLIENTS_MAX} (one api process's connection limit; got ${n})`);
    }
  }
  const tickersRaw = raw.streamTickers ?? String(STREAM_TICKERS_DEFAULT);
  if (!/^\d+$/.test(tickersRaw) || Number(tickersRaw) < 1 || Number(tickersRaw) > STREAM_TICKERS_MAX) {
    throw usage(`--stream-tickers must be an integer from 1 to ${STREAM_TICKERS_MAX} (got ${JSON.stringify(raw.streamTickers)})`);
  }
  return { clients, tickers: Number(tickersRaw) };
}

/**
 * The tickers client `index` subscribes to: `count` consecutive ones of `pool`, starting `count`
 * further for each client (wrapping), so every ticker of the pool has about as many followers.
 */
export function tickersFor(index: number, count: number, pool: readonly string[]): string[] {
  if (count > pool.length) throw new RangeError(`${count} tickers per client, but only ${pool.length} are listed`);
  const out: string[] = [];
  const start = (index * count) % pool.length;
  for (let k = 0; k < count; k++) out.push(pool[(start + k) % pool.length]!);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading the server's messages

export type StreamMessage =
  | { kind: 'event'; seq: number; type: string; atMs: number }
  | { kind: 'price'; ticker: string; asOfMs: number }
  /** A reply or an error (`{ "type": ... }`), parsed whole: they are few. */
  | { kind: 'reply'; type: string; body: Record<string, unknown> }
  | { kind: 'unreadable'; text: string };

// The server renders events and prices with their fields in this order (event-log.ts
// streamEventJson, live-protocol.ts priceJson): the fields a client measures with are read off
// the front of the text, so the event's data, the bulk of it, is never parsed. Anything else
// falls back to JSON.parse.
const EVENT_HEAD = /^\{"channel":"events","seq":(\d+),"type":"([^"]+)","at":"([^"]+)"/;
const PRICE_TEXT = /^\{"channel":"prices","ticker":"([^"]+)","price":"[^"]*","as_of":"([^"]+)"\}$/;

/** What a message says, as cheaply as it can be read. */
export function readStreamMessage(text: string): StreamMessage {
  const e = EVENT_HEAD.exec(text);
  if (e) {
    const atMs = Date.parse(e[3]!);
    if (Number.isFinite(atMs)) return { kind: 'event', seq: Number(e[1]), type: e[2]!, atMs };
  }
  const p = PRICE_TEXT.exec(text);
  if (p) {
    const asOfMs = Date.parse(p[2]!);
    if (Number.isFinite(asOfMs)) return { kind: 'price', ticker: p[1]!, asOfMs };
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { kind: 'unreadable', text };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { kind: 'unreadable', text };
  const b = body as Record<string, unknown>;
  if (b.channel === 'events' && Number.isSafeInteger(b.seq) && typeof b.type === 'string' && typeof b.at === 'string') {
    const atMs = Date.parse(b.at);
    if (Number.isFinite(atMs)) return { kind: 'event', seq: b.seq as number, type: b.type, atMs };
  }
  if (b.channel === 'prices' && typeof b.ticker === 'string' && typeof b.as_of === 'string') {
    const asOfMs = Date.parse(b.as_of);
    if (Number.isFinite(asOfMs)) return { kind: 'price', ticker: b.ticker, asOfMs };
  }
  if (b.channel === undefined && typeof b.type === 'string') return { kind: 'reply', type: b.type, body: b };
  return { kind: 'unreadable', text };
}

// ---------------------------------------------------------------------------------------------
// Seqs: is every event there, once, in order?

export type SeqOutcome = 'next' | 'gap' | 'duplicate' | 'unexpected';

/**
 * One client's events. The subscription says where it starts (`from_seq` of the `subscribed`
 * reply: the user's last seq when nothing is replayed); from there each event must be the next
 * seq. A seq beyond the next is a gap (the events between are missing), one at or before the
 * last is a duplicate; an event before the reply is unexpected (the protocol sends none).
 */
export class SeqTracker {
  /** Where the first subscription started; undefined until its reply. */
  fromSeq: number | undefined;
  /** The last seq taken (fromSeq before any). */
  lastSeq = 0;
  /** Distinct events taken. */
  received = 0;
  gaps = 0;
  missing = 0;
  duplicates = 0;
  unexpected = 0;
  /** Resubscriptions (after the server closed the connection), each from where it was. */
  resumes = 0;

  get started(): boolean {
    return this.fromSeq !== undefined;
  }

  /** The first subscription's reply: events after `fromSeq` are this client's. */
  start(fromSeq: number): void {
    this.fromSeq = fromSeq;
    this.lastSeq = fromSeq;
  }

  /**
   * A resubscription's reply (it asked `since_seq` = lastSeq). A server starting further on
   * skipped events: counted as a gap.
   */
  resume(fromSeq: number): void {
    this.resumes += 1;
    if (fromSeq > this.lastSeq) {
      this.gaps += 1;
      this.missing += fromSeq - this.lastSeq;
      this.lastSeq = fromSeq;
    }
  }

  onEvent(seq: number): SeqOutcome {
    if (this.fromSeq === undefined) {
      this.unexpected += 1;
      return 'unexpected';
    }
    if (seq <= this.lastSeq) {
      this.duplicates += 1;
      return 'duplicate';
    }
    this.received += 1;
    if (seq === this.lastSeq + 1) {
      this.lastSeq = seq;
      return 'next';
    }
    this.gaps += 1;
    this.missing += seq - this.lastSeq - 1;
    this.lastSeq = seq;
    return 'gap';
  }
}

export interface SeqSummary {
  clients: number;
  /** Clients that received at least one event. */
  clientsWithEvents: number;
  clientsWithGaps: number;
  clientsWithDuplicates: number;
  received: number;
  gaps: number;
  missing: number;
  duplicates: number;
  unexpected: number;
  resumes: number;
}

export function summarizeSeqs(trackers: Iterable<SeqTracker>): SeqSummary {
  const s: SeqSummary = {
    clients: 0,
    clientsWithEvents: 0,
    clientsWithGaps: 0,
    clientsWithDuplicates: 0,
    received: 0,
    gaps: 0,
    missing: 0,
    duplicates: 0,
    unexpected: 0,
    resumes: 0,
  };
  for (const t of trackers) {
    s.clients += 1;
    if (t.received > 0) s.clientsWithEvents += 1;
    if (t.gaps > 0) s.clientsWithGaps += 1;
    if (t.duplicates > 0) s.clientsWithDuplicates += 1;
    s.received += t.received;
    s.gaps += t.gaps;
    s.missing += t.missing;
    s.duplicates += t.duplicates;
    s.unexpected += t.unexpected;
    s.resumes += t.resumes;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Whole milliseconds, exactly

/**
 * Counts of whole milliseconds, one bucket each up to MS_HISTOGRAM_LIMIT (2.4 MB) and every
 * larger value kept apart: exact percentiles (the same nearest rank as LatencyRecorder's) of
 * millions of samples without keeping them. Values are rounded to the millisecond (they are
 * whole already); a negative one counts as 0 and is counted apart.
 */
export class MsHistogram {
  private readonly counts: Uint32Array;
  private readonly beyond: number[] = [];
  count = 0;
  sumMs = 0;
  maxMs = 0;
  negative = 0;

  constructor(private readonly limitMs = MS_HISTOGRAM_LIMIT) {
    this.counts = new Uint32Array(limitMs + 1);
  }

  record(ms: number): void {
    let v = Math.round(ms);
    if (v < 0) {
      this.negative += 1;
      v = 0;
    }
    this.count += 1;
    this.sumMs += v;
    if (v > this.maxMs) this.maxMs = v;
    if (v <= this.limitMs) this.counts[v]! += 1;
    else this.beyond.push(v);
  }

  /** The smallest value with at least p % of the samples at or below it (nearest rank). */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.min(this.count, Math.max(1, Math.ceil((p / 100) * this.count)));
    let seen = 0;
    for (let v = 0; v <= this.limitMs; v++) {
      seen += this.counts[v]!;
      if (seen >= rank) return v;
    }
    const sorted = [...this.beyond].sort((a, b) => a - b);
    return sorted[rank - seen - 1]!;
  }

  get meanMs(): number {
    return this.count === 0 ? 0 : this.sumMs / this.count;
  }

  percentiles(): Percentiles {
    return { count: this.count, p50: this.percentile(50), p95: this.percentile(95), p99: this.percentile(99), max: this.maxMs, exact: true };
  }
}

// ---------------------------------------------------------------------------------------------
// The report

/** A market-order measurement's figures as the plain bench reports them. */
export type MarketFigures = Pick<MarketPhase, 'http' | 'db' | 'sides' | 'processes' | 'postgres' | 'errors' | 'drain'>;

/** CPU of the processes that matter here, over a market-order window. */
export interface StreamCpu {
  /** The api process (all-in-one / embedded: the one papertrade process), CPU ms per second of the window. */
  apiMsPerS: number | null;
  apiMsPerOrder: number | null;
  apiPeakRssMb: number | null;
  /** The bench process: the load generator and every WebSocket client. */
  benchMsPerS: number | null;
  machineCores: number | null;
  otherCores: number | null;
}

const rowOf = (rows: readonly ProcessCpu[], match: (name: string) => boolean) => rows.find((r) => match(r.process));

export function streamCpu(processes: readonly ProcessCpu[], apiProcess: string, benchProcess: string): StreamCpu {
  const api = rowOf(processes, (n) => n === apiProcess);
  const bench = rowOf(processes, (n) => n === benchProcess);
  return {
    apiMsPerS: api ? api.cores * 1000 : null,
    apiMsPerOrder: api?.msPerOrder ?? null,
    apiPeakRssMb: api?.peakMb ?? null,
    benchMsPerS: bench ? bench.cores * 1000 : null,
    machineCores: rowOf(processes, (n) => n.startsWith('whole machine'))?.cores ?? null,
    otherCores: rowOf(processes, (n) => n.startsWith('everything else'))?.cores ?? null,
  };
}

export interface StreamMarket {
  label: string;
  windowStartMs: number;
  windowEndMs: number;
  figures: MarketFigures;
  cpu: StreamCpu;
  /** Events the database holds with `at` in the window, every user's (null: not read). */
  eventsWritten: number | null;
  eventsWrittenPerS: number | null;
}

/** What the api's CPU over a window with clients says the fan-out costs. */
export interface FanOut {
  /** The api's CPU ms/s in the window less the baseline's (the issue's definition). */
  deltaMsPerS: number | null;
  /**
   * Less what the window's own orders cost at the baseline's CPU per order instead: when the
   * clients slow the orders down, the plain difference undercounts the fan-out.
   */
  adjustedMsPerS: number | null;
  /** Per message delivered (events + prices received in the window), µs. */
  deltaUsPerMessage: number | null;
  adjustedUsPerMessage: number | null;
}

export function fanOut(baseline: StreamCpu, phase: StreamCpu, acceptedPerS: number, messagesPerS: number): FanOut {
  const delta = phase.apiMsPerS !== null && baseline.apiMsPerS !== null ? phase.apiMsPerS - baseline.apiMsPerS : null;
  const adjusted = phase.apiMsPerS !== null && baseline.apiMsPerOrder !== null ? phase.apiMsPerS - baseline.apiMsPerOrder * acceptedPerS : null;
  const per = (v: number | null) => (v === null || messagesPerS <= 0 ? null : (v * 1000) / messagesPerS);
  return { deltaMsPerS: delta, adjustedMsPerS: adjusted, deltaUsPerMessage: per(delta), adjustedUsPerMessage: per(adjusted) };
}

/** Bytes per connection from two readings (null when either is missing or nothing connected). */
export function perConnection(before: number | null | undefined, after: number | null | undefined, connections: number): number | null {
  if (before === null || before === undefined || after === null || after === undefined || connections <= 0) return null;
  return Math.round((after - before) / connections);
}

/** The api's memory at one moment: RSS sampled a few times (median), and after a forced full GC. */
export interface ApiMemory {
  rssMedianBytes: number | null;
  rssSamples: number;
  /** heapUsed + external after HeapProfiler.collectGarbage (null: no inspector, or it failed). */
  heapAfterGcBytes: number | null;
  /** papertrade_ws_connections of /metrics at that moment. */
  serverConnections: number | null;
}

/** Server-side counters of /metrics (papertrade_ws_*) over a window. */
export interface ServerCounts {
  eventsSent: number | null;
  pricesSent: number | null;
  /** Connections the server closed, by reason. */
  closedByReason: Record<string, number>;
  sweepCatchUps: number | null;
}

export interface StreamPhase {
  clients: number;
  tickersPerClient: number;
  /** Clients that followed a user the order load trades for (the others get prices only). */
  clientsOfTradingUsers: number;
  connect: {
    connected: number;
    /** Clients started (fewer than `clients` when connecting stopped early). */
    attempted: number;
    /** Why no more clients were started (a deadline, too many failures); null: every one was. */
    stoppedBecause: string | null;
    /** Why the others did not connect (by cause). */
    errors: Record<string, number>;
    concurrency: number;
    totalMs: number;
    perS: number;
    /** Per client, from `new WebSocket` to the `subscribed` reply. */
    perClientMs: LatencySummary;
  };
  memory: {
    before: ApiMemory;
    idle: ApiMemory;
    /** ΔRSS / connected. */
    rssPerConnectionBytes: number | null;
    /** Δ(heapUsed + external) after forced GCs / connected. */
    heapPerConnectionBytes: number | null;
    /** The bench's own RSS growth per client (the ws client side). */
    benchRssPerClientBytes: number | null;
    idleSettleMs: number;
  };
  market: StreamMarket;
  delivery: {
    /** Events whose `at` is in the window: Date.now() on receipt − at. */
    commitToDeliveryMs: LatencySummary;
    commitToDeliveryMeanMs: number;
    /** Prices received in the window: Date.now() on receipt − as_of. */
    tickToDeliveryMs: LatencySummary;
    tickToDeliveryMeanMs: number;
    /** Latencies that came out negative (clocks: should be none), counted as 0. */
    negativeLatencies: number;
    /** Received in the window (by receipt time), all clients. */
    eventsPerS: number;
    pricesPerS: number;
    messagesPerS: number;
    eventsByType: Record<string, number>;
    /** Sent by the server in the window (its counters), for comparison. */
    server: ServerCounts;
  };
  loss: {
    /** Per client (all of them): seqs contiguous from the subscription on. */
    seqs: SeqSummary;
    /**
     * Clients whose connection was down at the end (closed by the server, resubscription
     * failed), and their users' events they had not received: waiting in the log, not lost.
     * The figures below are of the other clients, subscribed at the end.
     */
    clientsDown: number;
    withheld: number;
    /** Events the database holds for the subscribed clients' users after their subscriptions' start, and how many they received. */
    dbSinceSubscribe: number | null;
    receivedSinceSubscribe: number;
    /** Of which with `at` in the window, and how many of those the clients received. */
    dbInWindow: number | null;
    receivedInWindow: number;
    /** Per subscribed client: events in the database it did not receive, summed (0: nothing lost). */
    lost: number | null;
    /** From the drain's end until every client had its user's last seq (null: not within the wait). */
    caughtUpAfterMs: number | null;
    caughtUpWaitMs: number;
    /** Clients still behind the log when the wait ended. */
    clientsBehind: number;
  };
  /** Connections closed by the server during the phase, by close code, and the resubscriptions that followed. */
  closes: { byCode: Record<string, number>; reconnects: number; reconnectErrors: Record<string, number> };
  /** Server error replies the clients got, by code. */
  serverErrors: Record<string, number>;
  unreadableMessages: number;
  fanOut: FanOut;
  bench: {
    /** The bench's event-loop delay over the window (monitorEventLoopDelay, 10 ms resolution): time a message may have waited to be read. */
    eventLoopDelayP99Ms: number | null;
    eventLoopDelayMaxMs: number | null;
  };
  /** filled/s of this window ÷ the baseline's. */
  filledRatio: number | null;
}

export interface StreamReport {
  kind: 'stream';
  timestamp: string;
  machine: BenchReport['machine'];
  versions: BenchReport['versions'];
  settings: BenchReport['settings'] & {
    stream: {
      clients: number[];
      tickersPerClient: number;
      /** Users created: the load's plus enough for the largest phase (one per client). */
      streamUsers: number;
      loadUsers: number;
      feedTickMs: number;
      apiProcess: string;
      connectConcurrency: number;
    };
  };
  baseline: StreamMarket;
  phases: StreamPhase[];
  audit: BenchReport['papertrade']['audit'];
  logs: string;
  targets: TargetRow[];
  notes: string[];
}

/** What the run measured (stream-run.ts gathers it). */
export interface StreamPart {
  options: StreamOptions;
  streamUsers: number;
  loadUsers: number;
  apiProcess: string;
  connectConcurrency: number;
  baseline: StreamMarket;
  phases: StreamPhase[];
  /** Why memory after a forced GC is missing, if it is. */
  gcNote: string | null;
}

export interface StreamCommon {
  timestamp: string;
  machine: BenchReport['machine'];
  versions: BenchReport['versions'];
  settings: BenchReport['settings'];
  logs: string;
}

const fmt = (v: number, digits = 0) => v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const maybe = (v: number | null | undefined, digits = 0, unit = '') => (v === null || v === undefined ? 'n/a' : `${fmt(v, digits)}${unit}`);
const ms = (v: number) => (v >= 100 ? fmt(v, 0) : v >= 10 ? fmt(v, 1) : fmt(v, 2));
const kb = (bytes: number | null) => (bytes === null ? 'n/a' : `${fmt(bytes / 1024, 1)} KB`);
const mb = (bytes: number | null) => (bytes === null ? 'n/a' : `${fmt(bytes / 1024 / 1024, 1)} MB`);

/** The phase the latency targets are judged on: 1,000 clients, else the largest below it, else the smallest. */
export function targetPhase(phases: readonly StreamPhase[]): StreamPhase | undefined {
  const exact = phases.find((p) => p.clients === TARGET_AT_CLIENTS);
  if (exact) return exact;
  const below = phases.filter((p) => p.clients < TARGET_AT_CLIENTS).sort((a, b) => b.clients - a.clients)[0];
  return below ?? [...phases].sort((a, b) => a.clients - b.clients)[0];
}

export function lossFree(p: StreamPhase): boolean {
  const s = p.loss.seqs;
  return p.loss.lost === 0 && s.missing === 0 && s.duplicates === 0 && s.unexpected === 0 && p.loss.clientsBehind === 0 && p.loss.dbInWindow === p.loss.receivedInWindow;
}

export function streamTargets(r: Pick<StreamReport, 'phases'>): TargetRow[] {
  const t = targetPhase(r.phases);
  const at = t ? (t.clients === TARGET_AT_CLIENTS ? `at ${fmt(t.clients)} clients` : `at ${fmt(t.clients)} clients (no phase of ${fmt(TARGET_AT_CLIENTS)} in this run)`) : '';
  const ev = t?.delivery.commitToDeliveryMs;
  const pr = t?.delivery.tickToDeliveryMs;
  const rows: TargetRow[] = [
    {
      what: `commit → delivery p99, ${at}`,
      target: `≤ ${TARGET_DELIVERY_P99_MS} ms`,
      value: ev && ev.count > 0 ? `${ms(ev.p99)} ms (p50 ${ms(ev.p50)}, max ${ms(ev.max)}; ${fmt(ev.count)} events)` : 'n/a (no event)',
      met: ev && ev.count > 0 ? ev.p99 <= TARGET_DELIVERY_P99_MS : null,
    },
    {
      what: `tick → delivery p99, ${at}`,
      target: `≤ ${TARGET_DELIVERY_P99_MS} ms`,
      value: pr && pr.count > 0 ? `${ms(pr.p99)} ms (p50 ${ms(pr.p50)}, max ${ms(pr.max)}; ${fmt(pr.count)} prices)` : 'n/a (no price)',
      met: pr && pr.count > 0 ? pr.p99 <= TARGET_DELIVERY_P99_MS : null,
    },
    {
      what: 'no event lost, duplicated or out of order (every phase: seqs contiguous per client, and as many as the database holds)',
      target: '0',
      value: r.phases.map((p) => `${fmt(p.clients)}: ${p.loss.lost === null ? 'n/a' : fmt(p.loss.lost)} lost, ${fmt(p.loss.seqs.missing)} missing, ${fmt(p.loss.seqs.duplicates)} duplicated`).join('; ') || 'n/a',
      met: r.phases.length ? r.phases.every(lossFree) : null,
    },
    {
      what: 'filled orders/s with the event log ÷ the same bench before it',
      target: `≥ ${fmt(TARGET_EVENT_LOG_RATIO, 2)}`,
      value: 'not measured by --stream: the default bench on both commits',
      met: null,
    },
  ];
  return rows;
}

/** The report, its targets and its notes on method, from what was measured. */
export function streamReport(input: { part: StreamPart; audit: BenchReport['papertrade']['audit']; common: StreamCommon; feedTickMs: number }): StreamReport {
  const { part: p, common: c } = input;
  const notes: string[] = [];
  const mode = c.settings.mode;
  notes.push(
    `Clients: ${fmt(Math.max(...p.options.clients))} users were created for them (${fmt(p.loadUsers)} of them placing the market orders), one client per user: client i ` +
      `follows user i, so the first ${fmt(Math.min(p.loadUsers, Math.max(...p.options.clients)))} clients get events and the others prices only. Each connects with ` +
      `\`Authorization: Bearer <its key>\`, sends \`{"action":"subscribe","events":true,"tickers":[${p.options.tickers} tickers]}\` and waits for \`subscribed\` ` +
      `(${p.connectConcurrency} connecting at a time); the tickers rotate over the listed ones, the traded ones first. Every client runs in the bench process ` +
      '(`ws`), beside the load generator: its CPU and event-loop delay say whether the client side kept up.',
  );
  notes.push(
    'Commit → delivery: `Date.now()` when the client reads an event, less its `at` — `clock_timestamp()` when the row was written, just before the commit, ' +
      'rendered in whole milliseconds — so it includes the commit itself, the bus (Redis pub/sub between the engine and the api, or memory in one process), ' +
      'the fan-out and the socket; events with `at` in the steady window count. Tick → delivery: the read less the price\'s `as_of` (when the feed made the tick), ' +
      `for prices read in the window; the feed ticks every listed ticker every ${input.feedTickMs} ms. Both clocks are this machine's; the millisecond rendering ` +
      'makes each figure exact to ±1 ms. Percentiles are exact (one histogram bucket per millisecond).',
  );
  notes.push(
    'No loss: each client checks that the seqs it receives continue its subscription\'s `from_seq` one by one (a seq further on is a gap, one already seen a ' +
      'duplicate); after the drain the bench waits until every client has its user\'s last seq (event_counters), then compares the events it received with ' +
      'what `events` holds for those users since each subscription began, and those with `at` in the window. A connection the server closed is resumed with ' +
      '`since_seq` (as a client should), and counted.',
  );
  notes.push(
    `Memory per connection: the api's RSS (median of samples over 2 s, right after forced full GCs through the inspector, \`--inspect\` on the api) with ` +
      'no client, then with the clients connected and subscribed, idle but for the prices, divided by the clients connected; and heapUsed + external after ' +
      'those GCs, which leaves out heap slack and what the sockets hold outside the JS heap. The bench\'s own ΔRSS per client is the client side\'s (`ws`).' +
      (p.gcNote ? ` Forced GC: ${p.gcNote}.` : ''),
  );
  notes.push(
    `Fan-out CPU: the ${mode === 'roles' ? 'api process' : 'papertrade process (api, engine and feed in one)'}'s CPU ms per second of the window less the ` +
      "baseline window's (no client); \"adjusted\" subtracts instead what this window's orders cost at the baseline's CPU per order, since fewer orders " +
      'cost less. Per message: over events + prices the clients received in the window.',
  );
  notes.push(
    'Every window is the plain bench\'s market-order load (same settings), one without clients first, then one per client count; ANALYZE and CHECKPOINT ' +
      'before each; the clients are closed between phases (and the bench waits until the api holds no connection).',
  );
  for (const ph of p.phases) {
    if (ph.connect.connected < ph.clients) {
      notes.push(
        `${fmt(ph.clients)} clients: only ${fmt(ph.connect.connected)} connected in ${fmt(ph.connect.totalMs / 1000, 1)} s (failures: ${counts(ph.connect.errors)}` +
          `${ph.connect.stoppedBecause ? `; no more were started: ${ph.connect.stoppedBecause}, after ${fmt(ph.connect.attempted)} tries` : ''}); the phase ran with those.`,
      );
    }
    if (ph.loss.clientsDown > 0) {
      notes.push(
        `${fmt(ph.clients)} clients: ${fmt(ph.loss.clientsDown)} were still down at the end (the server closed them and resubscribing failed: ${counts(ph.closes.reconnectErrors)}); ` +
          `the ${fmt(ph.loss.withheld)} events of their users they had not received are in the log for their next since_seq, and are left out of the loss figures.`,
      );
    }
    const cl = Object.keys(ph.closes.byCode).length;
    if (cl > 0) notes.push(`${fmt(ph.clients)} clients: the server closed connections during the phase (${counts(ph.closes.byCode)}; 4008 = too slow a reader); ${fmt(ph.closes.reconnects)} resubscribed with since_seq.`);
    const tickP50 = ph.delivery.tickToDeliveryMs.p50;
    if (ph.delivery.tickToDeliveryMs.count > 0 && tickP50 > Math.max(1_000, 4 * input.feedTickMs)) {
      notes.push(
        `${fmt(ph.clients)} clients: the stream fell behind the ticks (tick → delivery p50 ${fmt(tickP50 / 1000, 1)} s): messages queued faster than they were ` +
          'delivered, so this phase\'s latencies, memory and CPU figures measure that backlog, not a steady fan-out — more than this machine could hold.',
      );
    }
    const lag = ph.bench.eventLoopDelayP99Ms;
    if (lag !== null && lag > 20) {
      notes.push(
        `${fmt(ph.clients)} clients: the bench's own event loop was delayed up to ${fmt(lag, 0)} ms (p99; max ${maybe(ph.bench.eventLoopDelayMaxMs, 0)} ms), ` +
          `its process using ${maybe(ph.market.cpu.benchMsPerS === null ? null : ph.market.cpu.benchMsPerS / 1000, 2)} cores: part of the delivery latency is the client side waiting for its turn.`,
      );
    }
    if ((ph.market.cpu.otherCores ?? 0) > 0.2) {
      notes.push(`${fmt(ph.clients)} clients: other processes kept ${fmt(ph.market.cpu.otherCores!, 2)} cores busy during the window: its figures are low by an unknown amount.`);
    }
  }
  if ((p.baseline.cpu.otherCores ?? 0) > 0.2) notes.push(`Baseline: other processes kept ${fmt(p.baseline.cpu.otherCores!, 2)} cores busy during the window.`);
  notes.push(
    'Filled orders/s with the event log against the same run before it (target ≥ 0.90): run the default bench (`npm run bench -- --duration 60`) on the commit ' +
      'before the event log and on this one, on a quiet machine, and compare filled/s (and CPU per order).',
  );
  notes.push('SQL floor: not run with --stream (the scenario compares papertrade with itself).');
  notes.push(`Process logs: ${c.logs}.`);
  return {
    kind: 'stream',
    timestamp: c.timestamp,
    machine: c.machine,
    versions: c.versions,
    settings: {
      ...c.settings,
      stream: {
        clients: p.options.clients,
        tickersPerClient: p.options.tickers,
        streamUsers: p.streamUsers,
        loadUsers: p.loadUsers,
        feedTickMs: input.feedTickMs,
        apiProcess: p.apiProcess,
        connectConcurrency: p.connectConcurrency,
      },
    },
    baseline: p.baseline,
    phases: p.phases,
    audit: input.audit,
    logs: c.logs,
    targets: streamTargets({ phases: p.phases }),
    notes,
  };
}

function counts(record: Record<string, number>): string {
  const entries = Object.entries(record).sort((x, y) => y[1] - x[1]);
  return entries.length ? entries.map(([k, v]) => `${k}: ${fmt(v)}`).join('; ') : 'none';
}

const latency = (l: LatencySummary) => (l.count === 0 ? 'n/a' : `${ms(l.p50)} / ${ms(l.p99)} / ${ms(l.max)}`);

export function renderStreamMarkdown(r: StreamReport): string {
  const s = r.settings;
  const lines: string[] = [];
  lines.push(`# papertrade benchmark: live stream — ${r.timestamp}`);
  lines.push('');
  lines.push(machineLine(r));
  lines.push('');
  lines.push(
    `Settings: ${s.mode === 'roles' ? `separate roles (${s.roles.join(', ')})` : s.mode === 'embedded' ? 'embedded (one `papertrade start` with nothing configured)' : 'all-in-one (`papertrade start`)'}, ` +
      `${s.loop === 'open' ? `open loop at ${fmt(s.rate as number)} orders/s` : `closed loop, ${s.concurrency} requests in flight`}, ` +
      `${s.durationS} s measured after ${s.warmupS} s warm-up per window, ${fmt(s.stream.loadUsers)} users trading of ${fmt(s.stream.streamUsers)}, ` +
      `clients ${s.stream.clients.map((n) => fmt(n)).join(' then ')}, ${s.stream.tickersPerClient} tickers each, feed tick ${s.stream.feedTickMs} ms, ` +
      `PG_POOL_MAX ${s.pgPoolMax}, prices: ${s.feed}.`,
  );
  if (Object.keys(s.env).length) lines.push(`Environment: ${Object.entries(s.env).map(([k, v]) => `${k}=${v}`).join(' ')}.`);
  lines.push('');
  lines.push('| target | goal | measured | met |');
  lines.push('|---|---|---|:---:|');
  for (const t of r.targets) lines.push(`| ${t.what} | ${t.target} | ${t.value} | ${t.met === null ? 'n/a' : t.met ? 'yes' : '**no**'} |`);
  lines.push('');

  const b = r.baseline;
  const ps = r.phases;
  const head = ['no client (baseline)', ...ps.map((p) => `${fmt(p.clients)} clients`)];
  lines.push(`| | ${head.join(' | ')} |`);
  lines.push(`|---|${head.map(() => '---:').join('|')}|`);
  const row = (name: string, base: string, cell: (p: StreamPhase) => string, bold = false) => {
    const w = (v: string) => (bold && v !== '' && v !== 'n/a' ? `**${v}**` : v);
    lines.push(`| ${bold ? `**${name}**` : name} | ${w(base)} | ${ps.map((p) => w(cell(p))).join(' | ')} |`);
  };
  row('clients connected and subscribed', '0', (p) => `${fmt(p.connect.connected)}${p.connect.connected < p.clients ? ` of ${fmt(p.clients)}` : ''}`);
  row('… of users trading (get events)', '', (p) => fmt(p.clientsOfTradingUsers));
  row('connect + subscribe: all (s) / per client p50 / p99 (ms)', '', (p) => `${fmt(p.connect.totalMs / 1000, 1)} / ${ms(p.connect.perClientMs.p50)} / ${ms(p.connect.perClientMs.p99)}`);
  row('api RSS, idle (MB)', mb(ps[0]?.memory.before.rssMedianBytes ?? null), (p) => mb(p.memory.idle.rssMedianBytes));
  row('memory per connection: api ΔRSS / N', '', (p) => kb(p.memory.rssPerConnectionBytes), true);
  row('… api Δ(heap + external) after forced GC / N', '', (p) => kb(p.memory.heapPerConnectionBytes));
  row('… the bench (client side) ΔRSS / N', '', (p) => kb(p.memory.benchRssPerClientBytes));
  row('commit → delivery p50 / p99 / max (ms)', '', (p) => latency(p.delivery.commitToDeliveryMs), true);
  row('… events (at in the window)', '', (p) => fmt(p.delivery.commitToDeliveryMs.count));
  row('tick → delivery p50 / p99 / max (ms)', '', (p) => latency(p.delivery.tickToDeliveryMs), true);
  row('events / prices received per s', '', (p) => `${fmt(p.delivery.eventsPerS)} / ${fmt(p.delivery.pricesPerS)}`);
  row('events / prices the server sent per s', '', (p) => {
    const d = r.settings.durationS;
    const e = p.delivery.server.eventsSent;
    const q = p.delivery.server.pricesSent;
    return `${e === null ? 'n/a' : fmt(e / d)} / ${q === null ? 'n/a' : fmt(q / d)}`;
  });
  row('events lost / missing / duplicated', '', (p) => `${maybe(p.loss.lost)} / ${fmt(p.loss.seqs.missing)} / ${fmt(p.loss.seqs.duplicates)}`, true);
  row('events since the subscriptions / in the window: database / received', '', (p) => `${maybe(p.loss.dbSinceSubscribe)} / ${fmt(p.loss.receivedSinceSubscribe)}; ${maybe(p.loss.dbInWindow)} / ${fmt(p.loss.receivedInWindow)}`);
  row('clients down at the end / their events withheld (in the log)', '', (p) => `${fmt(p.loss.clientsDown)} / ${fmt(p.loss.withheld)}`);
  row('every client caught up with the log, after the drain (ms)', '', (p) => (p.loss.caughtUpAfterMs === null ? `no: ${fmt(p.loss.clientsBehind)} behind after ${fmt(p.loss.caughtUpWaitMs)}` : fmt(p.loss.caughtUpAfterMs)));
  row('connections closed by the server / resubscribed', '', (p) => `${fmt(Object.values(p.closes.byCode).reduce((a, x) => a + x, 0))} / ${fmt(p.closes.reconnects)}`);
  row('api CPU (ms/s)', maybe(b.cpu.apiMsPerS), (p) => maybe(p.market.cpu.apiMsPerS));
  row('fan-out CPU: api ms/s − baseline (adjusted for the orders)', '', (p) => `${maybe(p.fanOut.deltaMsPerS)} (${maybe(p.fanOut.adjustedMsPerS)})`, true);
  row('… per message delivered (µs)', '', (p) => `${maybe(p.fanOut.deltaUsPerMessage, 1)} (${maybe(p.fanOut.adjustedUsPerMessage, 1)})`);
  row('api peak RSS in the window (MB)', maybe(b.cpu.apiPeakRssMb), (p) => maybe(p.market.cpu.apiPeakRssMb));
  row('bench process CPU (cores: load generator + clients)', maybe(b.cpu.benchMsPerS === null ? null : b.cpu.benchMsPerS / 1000, 2), (p) => maybe(p.market.cpu.benchMsPerS === null ? null : p.market.cpu.benchMsPerS / 1000, 2));
  row('bench event-loop delay p99 / max (ms)', '', (p) => `${maybe(p.bench.eventLoopDelayP99Ms, 1)} / ${maybe(p.bench.eventLoopDelayMaxMs, 1)}`);
  row('whole machine (cores busy) / other processes', `${maybe(b.cpu.machineCores, 2)} / ${maybe(b.cpu.otherCores, 2)}`, (p) => `${maybe(p.market.cpu.machineCores, 2)} / ${maybe(p.market.cpu.otherCores, 2)}`);
  row('filled orders/s', fmt(b.figures.db.filledPerS), (p) => fmt(p.market.figures.db.filledPerS), true);
  row('… ÷ baseline', '1', (p) => maybe(p.filledRatio, 3));
  row('events written per s (database, every user)', maybe(b.eventsWrittenPerS), (p) => maybe(p.market.eventsWrittenPerS));
  row('HTTP accept p50 / p99 (ms)', `${ms(b.figures.http.latencyMs.p50)} / ${ms(b.figures.http.latencyMs.p99)}`, (p) => `${ms(p.market.figures.http.latencyMs.p50)} / ${ms(p.market.figures.http.latencyMs.p99)}`);
  row('accept → FILLED p50 / p99 (ms)', `${ms(b.figures.db.acceptToFillMs.p50)} / ${ms(b.figures.db.acceptToFillMs.p99)}`, (p) => `${ms(p.market.figures.db.acceptToFillMs.p50)} / ${ms(p.market.figures.db.acceptToFillMs.p99)}`);
  row('HTTP errors', counts(b.figures.errors), (p) => counts(p.market.figures.errors));
  lines.push('');

  for (const p of ps) {
    const types = counts(p.delivery.eventsByType);
    lines.push(
      `- ${fmt(p.clients)} clients: events by type ${types}; server error replies: ${counts(p.serverErrors)}; server closes by reason: ${counts(p.delivery.server.closedByReason)}; ` +
        `sweep catch-ups ${maybe(p.delivery.server.sweepCatchUps)}; mean commit → delivery ${fmt(p.delivery.commitToDeliveryMeanMs, 1)} ms, tick → delivery ${fmt(p.delivery.tickToDeliveryMeanMs, 1)} ms` +
        `${p.delivery.negativeLatencies ? `; ${fmt(p.delivery.negativeLatencies)} negative latencies counted as 0` : ''}${p.unreadableMessages ? `; ${fmt(p.unreadableMessages)} unreadable messages` : ''}.`,
    );
  }
  const audit = r.audit;
  lines.push(`- Audit: ${!audit.ran ? `not run (${audit.note ?? 'unavailable'})` : audit.ok ? 'ok, every invariant holds' : `VIOLATIONS: ${counts(audit.violations)}`}.`);
  for (const note of r.notes) lines.push(`- ${note}`);
  lines.push('');
  return lines.join('\n');
}

/** Summary of a histogram for the report. */
export const summarizeMs = (h: MsHistogram): LatencySummary => summarize(h.percentiles());
