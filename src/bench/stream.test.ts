import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { parsePrice } from '../core/money.js';
import { quoteIdent } from '../infra/postgres.js';
import { streamEventJson } from '../services/events/event-log.js';
import { priceJson } from '../services/events/live-protocol.js';
import { BenchUsageError, parseBenchOptions } from './bench.js';
import { RESULTS_DIR, type LatencySummary, type ProcessCpu } from './report.js';
import { LatencyRecorder } from './stats.js';
import {
  fanOut,
  lossFree,
  MsHistogram,
  perConnection,
  readStreamMessage,
  renderStreamMarkdown,
  SeqTracker,
  streamCpu,
  streamReport,
  summarizeSeqs,
  targetPhase,
  tickersFor,
  type MarketFigures,
  type StreamMarket,
  type StreamPart,
  type StreamPhase,
  type StreamReport,
} from './stream.js';
import { serverCounts } from './stream-run.js';
import { RAW_BENCH_DEFAULTS as defaults } from '../../test/bench-options.js';
import { adminUrl, testDatabaseName, testRedisUrl } from '../../test/db-names.js';

describe('parseBenchOptions with --stream', () => {
  it('takes 1,000 then 5,000 clients of 5 tickers by default, in every mode, and leaves the SQL floor out', () => {
    const o = parseBenchOptions({ ...defaults, stream: true });
    expect(o.stream).toEqual({ clients: [1_000, 5_000], tickers: 5 });
    expect(o.floor).toBe(false);
    expect(parseBenchOptions({ ...defaults, stream: true, allInOne: true }).stream).not.toBeNull();
    expect(parseBenchOptions({ ...defaults, stream: true, embedded: true }).stream).not.toBeNull();
    expect(parseBenchOptions({ ...defaults, stream: true, streamClients: '20, 200,2000', streamTickers: '8' }).stream).toEqual({ clients: [20, 200, 2_000], tickers: 8 });
    expect(parseBenchOptions(defaults).stream).toBeNull();
    expect(parseBenchOptions(defaults).floor).toBe(true);
  });

  it('refuses its options without --stream, bad lists and counts out of bounds', () => {
    expect(() => parseBenchOptions({ ...defaults, streamClients: '10' })).toThrow(/go with --stream/);
    expect(() => parseBenchOptions({ ...defaults, streamTickers: '3' })).toThrow(/go with --stream/);
    const base = { ...defaults, stream: true };
    for (const bad of ['', '1000;5000', '1e3', '0', '10001', '1,,2', '-5']) {
      expect(() => parseBenchOptions({ ...base, streamClients: bad }), bad).toThrow(BenchUsageError);
    }
    expect(() => parseBenchOptions({ ...base, streamClients: '1,2,3,4,5,6,7,8,9,10,11' })).toThrow(/at most 10/);
    expect(() => parseBenchOptions({ ...base, streamTickers: '0' })).toThrow(BenchUsageError);
    expect(() => parseBenchOptions({ ...base, streamTickers: '101' })).toThrow(BenchUsageError);
  });

  it('is a scenario of its own, and needs the feed for the ticks', () => {
    expect(() => parseBenchOptions({ ...defaults, stream: true, startup: true })).toThrow(/separate scenarios/);
    expect(() => parseBenchOptions({ ...defaults, stream: true, allInOne: true, resting: true })).toThrow(/separate scenarios/);
    expect(() => parseBenchOptions({ ...defaults, stream: true, feed: false })).toThrow(/needs the feed/);
    // All-in-one runs its feed whatever --no-feed says.
    expect(parseBenchOptions({ ...defaults, stream: true, allInOne: true, feed: false }).stream).not.toBeNull();
  });
});

describe('tickersFor', () => {
  it('gives each client consecutive tickers, rotating so every ticker has about as many followers', () => {
    const pool = ['A', 'B', 'C', 'D', 'E', 'F', 'G'];
    expect(tickersFor(0, 3, pool)).toEqual(['A', 'B', 'C']);
    expect(tickersFor(1, 3, pool)).toEqual(['D', 'E', 'F']);
    expect(tickersFor(2, 3, pool)).toEqual(['G', 'A', 'B']);
    const followers = new Map<string, number>();
    for (let i = 0; i < 70; i++) for (const t of tickersFor(i, 3, pool)) followers.set(t, (followers.get(t) ?? 0) + 1);
    expect([...followers.values()]).toEqual(Array(7).fill(30));
    expect(() => tickersFor(0, 8, pool)).toThrow(RangeError);
  });
});

describe('readStreamMessage', () => {
  const at = '2026-12-02T10:00:00.123Z';
  const event = streamEventJson({ userId: '6f1c1e52-4a8e-4b8e-9a55-0d5a1d8e3a11', seq: 42, type: 'order.fill', at, dataJson: '{"id":"x","nested":{"seq":1,"at":"no"}}' });

  it('reads an event and a price as the server renders them, off the front of the text', () => {
    expect(readStreamMessage(event)).toEqual({ kind: 'event', seq: 42, type: 'order.fill', atMs: Date.parse(at) });
    const price = priceJson({ ticker: 'AAPL', price: parsePrice('231.5000'), asOfMs: Date.parse(at) });
    expect(readStreamMessage(price)).toEqual({ kind: 'price', ticker: 'AAPL', asOfMs: Date.parse(at) });
  });

  it('falls back to JSON.parse for another field order, and reads replies and errors whole', () => {
    const reordered = JSON.stringify({ seq: 7, channel: 'events', at, type: 'order.new', user_id: 'u', data: {} });
    expect(readStreamMessage(reordered)).toEqual({ kind: 'event', seq: 7, type: 'order.new', atMs: Date.parse(at) });
    expect(readStreamMessage(JSON.stringify({ as_of: at, ticker: 'KO', channel: 'prices', price: '1' }))).toEqual({ kind: 'price', ticker: 'KO', asOfMs: Date.parse(at) });
    const subscribed = readStreamMessage('{"type":"subscribed","id":"bench","events":true,"last_seq":3,"from_seq":3}');
    expect(subscribed).toMatchObject({ kind: 'reply', type: 'subscribed', body: { from_seq: 3 } });
    expect(readStreamMessage('{"type":"error","error":{"code":"RATE_LIMITED"}}')).toMatchObject({ kind: 'reply', type: 'error' });
  });

  it('calls anything else unreadable', () => {
    for (const text of ['not json', '[1,2]', '{"channel":"events","seq":"1"}', '{"channel":"events","seq":1,"type":"x","at":"yesterday"}', '{}']) {
      expect(readStreamMessage(text).kind, text).toBe('unreadable');
    }
  });
});

describe('SeqTracker', () => {
  it('takes seqs one by one after the subscription start', () => {
    const t = new SeqTracker();
    t.start(10);
    expect([11, 12, 13].map((s) => t.onEvent(s))).toEqual(['next', 'next', 'next']);
    expect(t).toMatchObject({ fromSeq: 10, lastSeq: 13, received: 3, gaps: 0, missing: 0, duplicates: 0 });
  });

  it('counts gaps with what they miss, duplicates, and events before the reply', () => {
    const t = new SeqTracker();
    expect(t.onEvent(1)).toBe('unexpected');
    t.start(0);
    expect(t.onEvent(1)).toBe('next');
    expect(t.onEvent(4)).toBe('gap');
    expect(t.onEvent(3)).toBe('duplicate'); // late, after the gap was taken: never in order
    expect(t.onEvent(4)).toBe('duplicate');
    expect(t.onEvent(5)).toBe('next');
    expect(t).toMatchObject({ lastSeq: 5, received: 3, gaps: 1, missing: 2, duplicates: 2, unexpected: 1 });
  });

  it('resumes where it was, and counts a server that resumes further on as a gap', () => {
    const t = new SeqTracker();
    t.start(0);
    t.onEvent(1);
    t.resume(1);
    expect(t.onEvent(2)).toBe('next');
    t.resume(5);
    expect(t).toMatchObject({ resumes: 2, gaps: 1, missing: 3, lastSeq: 5 });
  });

  it('adds up over clients', () => {
    const a = new SeqTracker();
    a.start(0);
    a.onEvent(1);
    const b = new SeqTracker();
    b.start(3);
    b.onEvent(5);
    b.onEvent(5);
    const idle = new SeqTracker();
    idle.start(0);
    expect(summarizeSeqs([a, b, idle])).toEqual({
      clients: 3,
      clientsWithEvents: 2,
      clientsWithGaps: 1,
      clientsWithDuplicates: 1,
      received: 2,
      gaps: 1,
      missing: 1,
      duplicates: 1,
      unexpected: 0,
      resumes: 0,
    });
  });
});

describe('MsHistogram', () => {
  it('gives the same percentiles as every sample kept (LatencyRecorder) for whole milliseconds', () => {
    const h = new MsHistogram(1_000);
    const r = new LatencyRecorder();
    let x = 12_345;
    for (let i = 0; i < 20_000; i++) {
      // A deterministic spread with a long tail, some beyond the histogram's array.
      x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
      const v = (x % 100) + (i % 97 === 0 ? (x % 5_000) : 0);
      h.record(v);
      r.record(v);
    }
    const p = r.percentiles();
    expect(h.percentiles()).toEqual({ count: p.count, p50: p.p50, p95: p.p95, p99: p.p99, max: p.max, exact: true });
    expect(h.percentile(100)).toBe(p.max);
  });

  it('counts negative values as 0, apart, and has nothing to say without samples', () => {
    const h = new MsHistogram(10);
    expect(h.percentiles()).toEqual({ count: 0, p50: 0, p95: 0, p99: 0, max: 0, exact: true });
    h.record(-2);
    h.record(4);
    expect(h.negative).toBe(1);
    expect(h.percentile(50)).toBe(0);
    expect(h.meanMs).toBe(2);
  });
});

describe('fan-out and memory arithmetic', () => {
  const rows = (apiCores: number, apiPerOrder: number, benchCores: number): ProcessCpu[] => [
    { process: 'api', cpuMs: 0, msPerOrder: apiPerOrder, cores: apiCores, peakMb: 150 },
    { process: 'bench (load generator)', cpuMs: 0, msPerOrder: null, cores: benchCores, peakMb: null },
    { process: 'everything else on the machine', cpuMs: 0, msPerOrder: null, cores: 0.1, peakMb: null },
    { process: 'whole machine (2 cores)', cpuMs: 0, msPerOrder: null, cores: 1.9, peakMb: null },
  ];

  it('reads the api and bench rows', () => {
    expect(streamCpu(rows(0.4, 0.5, 0.2), 'api', 'bench (load generator)')).toEqual({
      apiMsPerS: 400,
      apiMsPerOrder: 0.5,
      apiPeakRssMb: 150,
      benchMsPerS: 200,
      machineCores: 1.9,
      otherCores: 0.1,
    });
    expect(streamCpu(rows(0.4, 0.5, 0.2), 'papertrade (all-in-one)', 'x').apiMsPerS).toBeNull();
  });

  it('gives the CPU beyond the baseline, plain and at the baseline CPU per order, per message in µs', () => {
    const base = streamCpu(rows(0.4, 0.5, 0.1), 'api', 'bench (load generator)'); // 800 orders/s at 0.5 ms
    const phase = streamCpu(rows(0.5, 0.83, 0.3), 'api', 'bench (load generator)'); // 600 orders/s
    const f = fanOut(base, phase, 600, 10_000);
    expect(f.deltaMsPerS).toBeCloseTo(100);
    expect(f.adjustedMsPerS).toBeCloseTo(200); // 500 − 0.5 × 600
    expect(f.deltaUsPerMessage).toBeCloseTo(10);
    expect(f.adjustedUsPerMessage).toBeCloseTo(20);
    expect(fanOut(base, phase, 600, 0).deltaUsPerMessage).toBeNull();
  });

  it('gives bytes per connection', () => {
    expect(perConnection(100_000_000, 150_000_000, 1_000)).toBe(50_000);
    expect(perConnection(null, 1, 1)).toBeNull();
    expect(perConnection(1, 2, 0)).toBeNull();
  });

  it('takes the server counters between two scrapes', () => {
    const a = { connections: 0, eventsSent: 10, pricesSent: 100, closed: { slow_consumer: 1 }, catchUps: 0 };
    const b = { connections: 5, eventsSent: 25, pricesSent: 400, closed: { slow_consumer: 3, shutdown: 0 }, catchUps: 2 };
    expect(serverCounts(a, b)).toEqual({ eventsSent: 15, pricesSent: 300, closedByReason: { slow_consumer: 2 }, sweepCatchUps: 2 });
    expect(serverCounts(undefined, b)).toEqual({ eventsSent: null, pricesSent: null, closedByReason: {}, sweepCatchUps: null });
  });
});

// ---------------------------------------------------------------------------------------------
// The report, from figures made up for it

const lat = (p50: number, p99: number, count = 1_000): LatencySummary => ({ count, p50, p95: p99, p99, max: p99 * 1.5, exact: true });

function figures(filledPerS: number, apiCores: number): MarketFigures {
  return {
    http: { sent: 60_000, ok: 60_000, acceptedPerS: filledPerS, latencyMs: lat(20, 60), unfinished: 0 },
    db: { accepted: filledPerS * 10, filled: filledPerS * 10, acceptedPerS: filledPerS, filledPerS, rejected: {}, acceptToFillMs: lat(30, 80) },
    sides: { buy: 30_000, sell: 30_000 },
    processes: [
      { process: 'api', cpuMs: apiCores * 10_000, msPerOrder: (apiCores * 1000) / filledPerS, cores: apiCores, peakMb: 160 },
      { process: 'bench (load generator)', cpuMs: 0, msPerOrder: null, cores: 0.3, peakMb: null },
      { process: 'everything else on the machine', cpuMs: 0, msPerOrder: null, cores: 0.05, peakMb: null },
      { process: 'whole machine (2 cores)', cpuMs: 0, msPerOrder: null, cores: 1.9, peakMb: null },
    ],
    postgres: { walBytesPerOrder: null, checkpoints: 0, deadlocks: 0 },
    errors: {},
    drain: { ms: 100, pendingLeft: 0 },
  };
}

function market(label: string, filledPerS: number, apiCores: number): StreamMarket {
  const f = figures(filledPerS, apiCores);
  return { label, windowStartMs: 0, windowEndMs: 10_000, figures: f, cpu: streamCpu(f.processes, 'api', 'bench (load generator)'), eventsWritten: filledPerS * 20, eventsWrittenPerS: filledPerS * 2 };
}

function phase(clients: number, commitP99: number, lost = 0): StreamPhase {
  const seqs = summarizeSeqs([]);
  seqs.clients = clients;
  seqs.received = 20_000 - lost;
  const m = market(`with ${clients} WebSocket clients`, 900, 0.6);
  return {
    clients,
    tickersPerClient: 5,
    clientsOfTradingUsers: Math.min(clients, 1_000),
    connect: { connected: clients, attempted: clients, stoppedBecause: null, errors: {}, concurrency: 100, totalMs: 4_000, perS: clients / 4, perClientMs: lat(300, 500, clients) },
    memory: {
      before: { rssMedianBytes: 100 * 1024 * 1024, rssSamples: 8, heapAfterGcBytes: 40 * 1024 * 1024, serverConnections: 0 },
      idle: { rssMedianBytes: 150 * 1024 * 1024, rssSamples: 8, heapAfterGcBytes: 50 * 1024 * 1024, serverConnections: clients },
      rssPerConnectionBytes: Math.round((50 * 1024 * 1024) / clients),
      heapPerConnectionBytes: Math.round((10 * 1024 * 1024) / clients),
      benchRssPerClientBytes: 8_000,
      idleSettleMs: 2_000,
    },
    market: m,
    delivery: {
      commitToDeliveryMs: lat(20, commitP99, 18_000),
      commitToDeliveryMeanMs: 25,
      tickToDeliveryMs: lat(10, 40, 200_000),
      tickToDeliveryMeanMs: 12,
      negativeLatencies: 0,
      eventsPerS: 1_800,
      pricesPerS: 20_000,
      messagesPerS: 21_800,
      eventsByType: { 'order.new': 9_000, 'order.fill': 9_000 },
      server: { eventsSent: 18_000, pricesSent: 200_000, closedByReason: {}, sweepCatchUps: 0 },
    },
    loss: { seqs, clientsDown: 0, withheld: 0, dbSinceSubscribe: 20_000, receivedSinceSubscribe: 20_000 - lost, dbInWindow: 18_000, receivedInWindow: 18_000 - lost, lost, caughtUpAfterMs: 5, caughtUpWaitMs: 15_000, clientsBehind: 0 },
    closes: { byCode: {}, reconnects: 0, reconnectErrors: {} },
    serverErrors: {},
    unreadableMessages: 0,
    fanOut: fanOut(market('b', 1_000, 0.5).cpu, m.cpu, 900, 21_800),
    bench: { eventLoopDelayP99Ms: 12, eventLoopDelayMaxMs: 30 },
    filledRatio: 0.9,
  };
}

function report(phases: StreamPhase[]): StreamReport {
  const part: StreamPart = {
    options: { clients: phases.map((p) => p.clients), tickers: 5 },
    streamUsers: Math.max(...phases.map((p) => p.clients)),
    loadUsers: 1_000,
    apiProcess: 'api',
    connectConcurrency: 100,
    baseline: market('no client (baseline)', 1_000, 0.5),
    phases,
    gcNote: null,
  };
  return streamReport({
    part,
    audit: { ran: true, ok: true, violations: {}, note: null },
    feedTickMs: 250,
    common: {
      timestamp: '2026-12-02T10:00:00.000Z',
      machine: { cpu: 'AMD EPYC', cores: 2, ramGb: 8 },
      versions: { node: 'v20', postgres: '15', redis: '7', papertrade: 'abc' },
      logs: '/tmp/logs',
      settings: {
        mode: 'roles',
        roles: ['api', 'engine', 'feed'],
        loop: 'closed',
        rate: 'max',
        concurrency: 64,
        durationS: 10,
        warmupS: 5,
        users: 1_000,
        sellRatio: 0.5,
        quantity: 1,
        seedShares: 100,
        tickers: ['AAPL'],
        pgPoolMax: 4,
        engineBatchSizeMax: 100,
        feed: 'role',
        database: 'papertrade_bench',
        postgresSettings: {},
        redisPrefix: 'p:',
        env: {},
      },
    },
  });
}

describe('the stream report', () => {
  it('judges the latency targets at 1,000 clients, and loss over every phase', () => {
    const r = report([phase(1_000, 80), phase(5_000, 400)]);
    expect(targetPhase(r.phases)?.clients).toBe(1_000);
    expect(r.targets.map((t) => t.met)).toEqual([true, true, true, null]);
    expect(r.targets[0]!.value).toContain('80.0 ms');
    const lossy = report([phase(1_000, 80), phase(5_000, 400, 3)]);
    expect(lossFree(lossy.phases[1]!)).toBe(false);
    expect(lossy.targets[2]!.met).toBe(false);
    expect(lossy.targets[2]!.value).toContain('5,000: 3 lost');
    // Without a 1,000-client phase: the largest below it.
    expect(targetPhase(report([phase(20, 150), phase(200, 90), phase(2_000, 300)]).phases)?.clients).toBe(200);
    expect(report([phase(20, 150)]).targets[0]).toMatchObject({ met: false });
  });

  it('renders the phases side by side with the baseline', () => {
    const md = renderStreamMarkdown(report([phase(1_000, 80), phase(5_000, 400)]));
    expect(md).toContain('# papertrade benchmark: live stream — 2026-12-02T10:00:00.000Z');
    expect(md).toContain('| | no client (baseline) | 1,000 clients | 5,000 clients |');
    expect(md).toContain('| **commit → delivery p50 / p99 / max (ms)** |  | **20.0 / 80.0 / 120** | **20.0 / 400 / 600** |');
    expect(md).toContain('| **memory per connection: api ΔRSS / N** |  | **51.2 KB** | **10.2 KB** |');
    expect(md).toContain('| **filled orders/s** | **1,000** | **900** | **900** |');
    // 600 − 500 ms/s; adjusted: 600 − 0.5 ms × 900 orders/s.
    expect(md).toContain('| **fan-out CPU: api ms/s − baseline (adjusted for the orders)** |  | **100 (150)** | **100 (150)** |');
    expect(md).toContain('| commit → delivery p99, at 1,000 clients | ≤ 100 ms |');
    expect(md).toContain('- Audit: ok, every invariant holds.');
  });
});

// ---------------------------------------------------------------------------------------------
// End to end: the scenario, small, against this machine's PostgreSQL and Redis

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Runs the CLI (from dist, as `npm run bench` does) and resolves with its exit code, stdout and stderr. */
function runCli(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(root, 'dist', 'cli', 'main.js'), ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // SIGINT: the bench stops its children and cleans up on its own.
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('papertrade bench --stream, end to end', () => {
  it('connects the clients, delivers every event of their users, and reports it', { timeout: 240_000 }, async () => {
    // The bench runs its roles from dist: build it if a source changed (as `npm run bench` does).
    const build = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-if-stale.mjs')], { cwd: root, encoding: 'utf8', timeout: 180_000 });
    expect(build.status, `${build.stdout}${build.stderr}`).toBe(0);

    const redisUrl = testRedisUrl();
    const dbName = testDatabaseName(randomBytes(3).toString('hex'));
    const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: adminUrl(), PAPERTRADE_CLI: '1' };
    if (redisUrl) env.REDIS_URL = redisUrl;
    delete env.PAPERTRADE_REDIS_PREFIX;
    const args = [
      'bench',
      '--stream',
      '--stream-clients',
      '20',
      '--users',
      '20',
      '--concurrency',
      '8',
      '--seed-shares',
      '20',
      '--duration',
      '2',
      '--warmup',
      '1',
      '--db-name',
      dbName,
      '--json-only',
      // Without Redis, the zero-configuration deployment: everything in one process.
      ...(redisUrl ? [] : ['--embedded']),
    ];
    let r: StreamReport | undefined;
    try {
      const run = await runCli(args, env, 200_000);
      expect(run.code, run.stderr.slice(-4_000)).toBe(0);
      r = JSON.parse(run.stdout) as StreamReport;
      expect(r.kind).toBe('stream');
      expect(r.settings.stream).toMatchObject({ clients: [20], tickersPerClient: 5, streamUsers: 20, loadUsers: 20 });
      expect(r.baseline.figures.db.filled).toBeGreaterThan(0);
      expect(r.phases).toHaveLength(1);
      const p = r.phases[0]!;
      expect(p.connect.connected).toBe(20);
      expect(p.clientsOfTradingUsers).toBe(20);
      // Every event of the clients' users arrived, once, in order.
      expect(p.loss.dbSinceSubscribe).toBeGreaterThan(0);
      expect(p.loss.lost).toBe(0);
      expect(p.loss.seqs).toMatchObject({ clients: 20, missing: 0, duplicates: 0, unexpected: 0 });
      expect(p.loss.seqs.received).toBe(p.loss.dbSinceSubscribe);
      expect(p.loss.receivedSinceSubscribe).toBe(p.loss.dbSinceSubscribe);
      expect(p.loss).toMatchObject({ clientsDown: 0, withheld: 0 });
      expect(p.loss.receivedInWindow).toBe(p.loss.dbInWindow);
      expect(p.loss.clientsBehind).toBe(0);
      expect(lossFree(p)).toBe(true);
      expect(p.delivery.commitToDeliveryMs.count).toBe(p.loss.dbInWindow);
      expect(p.delivery.commitToDeliveryMs.count).toBeGreaterThan(0);
      expect(p.delivery.tickToDeliveryMs.count).toBeGreaterThan(0);
      expect(p.delivery.eventsByType['order.new']).toBeGreaterThan(0);
      expect(p.delivery.server.eventsSent).toBeGreaterThan(0);
      expect(p.memory.idle.serverConnections).toBe(20);
      expect(p.memory.before.rssMedianBytes).toBeGreaterThan(0);
      expect(p.memory.heapPerConnectionBytes).not.toBeNull();
      expect(p.market.cpu.apiMsPerS).toBeGreaterThan(0);
      expect(p.fanOut.deltaMsPerS).not.toBeNull();
      expect(p.bench.eventLoopDelayP99Ms).not.toBeNull();
      expect(r.targets).toHaveLength(4);
      expect(r.targets[2]!.met).toBe(true);
      expect(r.audit).toMatchObject({ ran: true, ok: true });
      expect(renderStreamMarkdown(r)).toContain('| | no client (baseline) | 20 clients |');
    } finally {
      if (r) {
        const base = r.timestamp.replace(/[:]/g, '-').replace(/\.\d+Z$/, 'Z');
        for (const ext of ['json', 'md']) rmSync(`${RESULTS_DIR}${base}-stream.${ext}`, { force: true });
      }
      if (redisUrl) {
        const admin = new pg.Client({ connectionString: adminUrl() });
        await admin.connect();
        await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(dbName)} WITH (FORCE)`).finally(() => admin.end());
      }
    }
  });
});
