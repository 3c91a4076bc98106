import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatPrice, parsePrice, parseQty, type Price } from '../core/money.js';
import { initialState, onTick, parseTerms, type RawTerms } from '../core/order-terms.js';
import { BenchUsageError, parseBenchOptions } from './bench.js';
import type { LatencySummary, ProcessCpu } from './report.js';
import {
  crossingPlan,
  gaugeValue,
  histogramDelta,
  histogramQuantile,
  KIND_CYCLE,
  minMedian,
  offsetBps,
  orderJson,
  perOrderBytes,
  planRestingOrders,
  readHistogram,
  readMicroBench,
  renderRestingMarkdown,
  restingReport,
  restingTerms,
  shareAtOrBelow,
  tickEvalStats,
  type HistogramSnapshot,
  type MarketPhase,
  type RestingKind,
  type RestingPart,
} from './resting.js';
import { inspectorUrl, logCounts, windowHealth } from './resting-run.js';
import { RAW_BENCH_DEFAULTS as defaults } from '../../test/bench-options.js';


describe('parseBenchOptions with --resting', () => {
  it('takes the defaults, and leaves the SQL floor out', () => {
    const o = parseBenchOptions({ ...defaults, allInOne: true, resting: true });
    expect(o.resting).toEqual({ orders: 100_000, cross: 1_000, crossRepeats: 3, idleS: 20 });
    expect(o.floor).toBe(false);
    expect(
      parseBenchOptions({ ...defaults, embedded: true, resting: true, restingOrders: '5000', restingCross: '10', restingIdle: '3', restingCrossRepeats: '1' }).resting,
    ).toEqual({ orders: 5_000, cross: 10, crossRepeats: 1, idleS: 3 });
    expect(parseBenchOptions(defaults).resting).toBeNull();
  });

  it('needs the api and the engine in one process, a closed loop, and no --startup', () => {
    expect(() => parseBenchOptions({ ...defaults, resting: true })).toThrow(/--all-in-one or --embedded/);
    expect(() => parseBenchOptions({ ...defaults, allInOne: true, resting: true, rate: '500' })).toThrow(/--rate at max/);
    expect(() => parseBenchOptions({ ...defaults, startup: true, resting: true })).toThrow(BenchUsageError);
  });

  it('refuses its sizes without --resting, and out of bounds', () => {
    expect(() => parseBenchOptions({ ...defaults, allInOne: true, restingOrders: '10' })).toThrow(/go with --resting/);
    const base = { ...defaults, allInOne: true, resting: true };
    expect(() => parseBenchOptions({ ...base, restingOrders: '0' })).toThrow(BenchUsageError);
    expect(() => parseBenchOptions({ ...base, restingOrders: '2000000' })).toThrow(BenchUsageError);
    expect(() => parseBenchOptions({ ...base, restingCross: '1e3' })).toThrow(BenchUsageError);
    expect(() => parseBenchOptions({ ...base, restingIdle: '0' })).toThrow(BenchUsageError);
    expect(() => parseBenchOptions({ ...base, restingCrossRepeats: '21' })).toThrow(BenchUsageError);
    expect(() => parseBenchOptions({ ...defaults, allInOne: true, restingCrossRepeats: '2' })).toThrow(/go with --resting/);
  });
});

/** The order a body describes, as the OMS reads it (core/order-terms parseTerms). */
function termsOfBody(body: string) {
  const b = JSON.parse(body) as RawTerms & { side: 'buy' | 'sell'; quantity: string };
  return parseTerms(b.side, parseQty(b.quantity), b);
}

describe('the background orders', () => {
  const price = parsePrice('230.0000');
  const kinds = [...new Set(KIND_CYCLE)];

  it('computes offsets exactly, in basis points', () => {
    expect(offsetBps(price, 1_000n)).toBe(parsePrice('253.0000'));
    expect(offsetBps(price, -3_000n)).toBe(parsePrice('161.0000'));
    expect(offsetBps(parsePrice('0.0003'), -5_000n)).toBe(parsePrice('0.0002')); // 1.5 units: half up
  });

  it('rests every kind and side on the far side of the market: nothing executes on a walk within ±4 % of the price', () => {
    for (const kind of kinds) {
      for (const side of ['buy', 'sell'] as const) {
        const t = termsOfBody(orderJson('u', 'AAPL', restingTerms(kind, side, price, 1_000n)));
        expect(t.timeInForce).toBe('gtc');
        let state = initialState(t, price);
        // Down to −4 %, up to +4 % and back: a swing of 8.3 % from the low, short of the 10 % a
        // trailing stop needs from its extreme (the levels follow the walk).
        for (const pct of [0, -2, -4, -2, 0, 2, 4, 2, 0, -2, -4]) {
          const p = offsetBps(price, BigInt(pct * 100));
          const outcome = onTick(t, state, p);
          expect(outcome.kind, `${kind} ${side} at ${pct} %`).toBe('rest');
          if (outcome.kind === 'rest') state = outcome.state;
        }
      }
    }
  });

  it('is executable once the price travels the whole distance', () => {
    const at = (kind: RestingKind, side: 'buy' | 'sell', pct: number) => {
      const t = termsOfBody(orderJson('u', 'AAPL', restingTerms(kind, side, price, 1_000n)));
      return onTick(t, initialState(t, price), offsetBps(price, BigInt(pct * 100))).kind;
    };
    expect(at('limit', 'buy', -10)).toBe('execute');
    expect(at('limit', 'sell', 10)).toBe('execute');
    expect(at('stop', 'buy', 10)).toBe('execute');
    expect(at('stop', 'sell', -10)).toBe('execute');
    expect(at('stop_limit', 'buy', 10)).toBe('execute');
    expect(at('trailing_stop (trail_percent)', 'sell', -10)).toBe('execute');
    expect(at('trailing_stop (trail_price)', 'buy', 10)).toBe('execute');
  });

  it('plans exact shares of every kind, both sides, the same count per ticker', () => {
    const quotes = ['AAA', 'BBB', 'CCC', 'DDD'].map((ticker, i) => ({ ticker, price: parsePrice(String(20 + i * 100)) }));
    const planned = planRestingOrders(4 * 40 * 10, quotes);
    const byTicker = new Map<string, number>();
    const byKindSide = new Map<string, number>();
    for (const p of planned) {
      byTicker.set(p.ticker, (byTicker.get(p.ticker) ?? 0) + 1);
      byKindSide.set(`${p.kind}/${p.terms.side}`, (byKindSide.get(`${p.kind}/${p.terms.side}`) ?? 0) + 1);
    }
    expect([...byTicker.values()]).toEqual([400, 400, 400, 400]);
    const n = planned.length;
    expect(byKindSide.get('limit/buy')! + byKindSide.get('limit/sell')!).toBe(0.3 * n);
    expect(byKindSide.get('stop/buy')! + byKindSide.get('stop/sell')!).toBe(0.2 * n);
    expect(byKindSide.get('stop_limit/buy')).toBe(0.1 * n);
    expect(byKindSide.get('trailing_stop (trail_percent)/sell')).toBe(0.075 * n);
    expect(planRestingOrders(10, quotes)).toEqual(planRestingOrders(10, quotes)); // seeded
    for (const p of planned) {
      const t = termsOfBody(orderJson('u', p.ticker, p.terms));
      const q = quotes.find((x) => x.ticker === p.ticker)!.price;
      const level = t.limitPrice ?? t.stopPrice;
      if (t.type === 'limit' || t.type === 'stop') {
        // 10 % to 30 % away.
        const away = level! > q ? level! - q : q - level!;
        expect(away * 100n >= q * 10n - 1n && away * 100n <= q * 30n + 1n).toBe(true);
      }
    }
  });
});

describe('crossingPlan', () => {
  it('puts every limit between the crossing tick and the price, and the tick reaches them all', () => {
    const price: Price = parsePrice('68.1234');
    const { limits, tick } = crossingPlan(price, 1_000);
    expect(limits).toHaveLength(1_000);
    expect(new Set(limits).size).toBeGreaterThan(900);
    for (const l of limits) {
      expect(l < price && l > tick).toBe(true);
      const buy = termsOfBody(orderJson('u', 'KO', { side: 'buy', type: 'limit', limit_price: formatPrice(l) }));
      expect(onTick(buy, initialState(buy, price), price).kind).toBe('rest');
      expect(onTick(buy, initialState(buy, price), tick).kind).toBe('execute');
    }
    // 20–60 bps under the price, the tick 100 bps under it.
    expect(limits[0]).toBe(parsePrice('67.9871'));
    expect(limits[999]).toBe(parsePrice('67.7146'));
    expect(tick).toBe(parsePrice('67.4422'));
    expect(crossingPlan(price, 1).limits).toEqual([limits[0]]);
  });
});

const TEXT = `# HELP papertrade_resting_tick_eval_seconds Time
# TYPE papertrade_resting_tick_eval_seconds histogram
papertrade_resting_tick_eval_seconds_bucket{le="0.000001",role="all"} 10
papertrade_resting_tick_eval_seconds_bucket{le="0.000002",role="all"} 40
papertrade_resting_tick_eval_seconds_bucket{le="0.000005",role="all"} 100
papertrade_resting_tick_eval_seconds_bucket{le="0.00005",role="all"} 199
papertrade_resting_tick_eval_seconds_bucket{le="0.0001",role="all"} 200
papertrade_resting_tick_eval_seconds_bucket{le="+Inf",role="all"} 200
papertrade_resting_tick_eval_seconds_sum{role="all"} 0.0006
papertrade_resting_tick_eval_seconds_count{role="all"} 200
papertrade_resting_orders{role="all"} 100000
papertrade_resting_orders_total_not_this{role="all"} 5
nodejs_heap_size_used_bytes{role="all"} 123456789
`;

describe('reading /metrics', () => {
  it('reads a gauge by its exact name, and a histogram', () => {
    expect(gaugeValue(TEXT, 'papertrade_resting_orders')).toBe(100_000);
    expect(gaugeValue(TEXT, 'nodejs_heap_size_used_bytes')).toBe(123_456_789);
    expect(gaugeValue(TEXT, 'missing')).toBeUndefined();
    const h = readHistogram(TEXT, 'papertrade_resting_tick_eval_seconds')!;
    expect(h.count).toBe(200);
    expect(h.sum).toBeCloseTo(0.0006);
    expect(h.buckets.map((b) => b.le)).toEqual([1e-6, 2e-6, 5e-6, 5e-5, 1e-4, Infinity]);
    expect(readHistogram(TEXT, 'papertrade_nothing')).toBeUndefined();
  });

  it('subtracts two snapshots', () => {
    const a = readHistogram(TEXT, 'papertrade_resting_tick_eval_seconds')!;
    const b: HistogramSnapshot = { buckets: a.buckets.map((x) => ({ le: x.le, count: x.count * 3 })), sum: a.sum * 3, count: a.count * 3 };
    const d = histogramDelta(a, b);
    expect(d.count).toBe(400);
    expect(d.buckets.map((x) => x.count)).toEqual([20, 80, 200, 398, 400, 400]);
    expect(d.sum).toBeCloseTo(0.0012);
  });
});

describe('histogram quantiles', () => {
  const h = readHistogram(TEXT, 'papertrade_resting_tick_eval_seconds')!;

  it('interpolates inside the bucket that holds the rank, as histogram_quantile does', () => {
    // Rank 100 of 200 is the last of the (2, 5] µs bucket: its top.
    expect(histogramQuantile(h, 0.5)!.estimate).toBeCloseTo(5e-6, 12);
    // Rank 198 in (5, 50] µs, which holds ranks 101..199: 5 + 45 × 98/99.
    const p99 = histogramQuantile(h, 0.99)!;
    expect(p99.estimate).toBeCloseTo(5e-6 + 45e-6 * (98 / 99), 12);
    expect(p99.upper).toBe(5e-5);
    // The first bucket interpolates from 0.
    expect(histogramQuantile(h, 0.025)!.estimate).toBeCloseTo(0.5e-6, 12);
  });

  it('says so when the rank falls in +Inf, and gives nothing without samples', () => {
    const inf: HistogramSnapshot = { buckets: [{ le: 1e-6, count: 1 }, { le: Infinity, count: 4 }], sum: 1, count: 4 };
    expect(histogramQuantile(inf, 0.99)).toEqual({ estimate: 1e-6, upper: Infinity });
    expect(histogramQuantile({ buckets: [], sum: 0, count: 0 }, 0.5)).toBeNull();
    expect(tickEvalStats(undefined)).toBeNull();
    expect(tickEvalStats({ buckets: [{ le: Infinity, count: 0 }], sum: 0, count: 0 })).toBeNull();
  });

  it('summarizes tick evaluations in µs, with the exact share within 50 µs', () => {
    const s = tickEvalStats(h)!;
    expect(s.ticks).toBe(200);
    expect(s.meanUs).toBe(3);
    expect(s.p50Us).toBe(5);
    expect(s.p99UpperUs).toBe(50);
    expect(s.maxUpperUs).toBe(100);
    expect(s.within50UsShare).toBe(199 / 200);
    expect(shareAtOrBelow(h, 3e-5)).toBeNull();
  });
});

describe('readMicroBench', () => {
  it('reads what the index retains, from either shape of the micro-benchmark output', () => {
    const now = readMicroBench({ orders: 100_000, bytesPerOrder: { retained: { total: 200.3 }, callerObjects: { total: 444.5 } }, quietTick: { meanUs: 0.7, p99Us: 4.4 } });
    expect(now).toMatchObject({ orders: 100_000, bytesPerOrder: 200.3, figure: 'bytesPerOrder.retained.total', callerObjectsBytesPerOrder: 444.5, quietTickMeanUs: 0.7 });
    const before = readMicroBench({ heapBytesPerOrder: { total: 520, orderObjects: 300 }, crossingTick: { meanMs: 2 } });
    expect(before).toMatchObject({ bytesPerOrder: 520, figure: 'heapBytesPerOrder.total', callerObjectsBytesPerOrder: 300, crossingTickMeanMs: 2, orders: null });
    expect(readMicroBench('garbage')).toMatchObject({ bytesPerOrder: null, figure: null });
  });
});

describe('memory arithmetic', () => {
  it('gives bytes per order and min / median', () => {
    expect(perOrderBytes(100_000_000, 130_000_000, 100_000)).toBe(300);
    expect(perOrderBytes(null, 1, 1)).toBeNull();
    expect(perOrderBytes(1, 2, 0)).toBeNull();
    expect(minMedian([5, 1, 3, 2])).toEqual({ min: 1, median: 2.5, n: 4 });
    expect(minMedian([])).toBeNull();
  });

  it('finds the inspector URL a child printed in its log', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'resting-test-'));
    try {
      const log = path.join(dir, 'x.log');
      writeFileSync(log, 'Debugger listening on ws://127.0.0.1:40001/aaa\nFor help, see: https://nodejs.org/en/docs/inspector\n{"level":40}\n');
      expect(inspectorUrl(log)).toBe('ws://127.0.0.1:40001/aaa');
      expect(inspectorUrl(path.join(dir, 'none.log'))).toBeUndefined();
      const before = logCounts(log)!;
      writeFileSync(log, '{"msg":"resting watcher lost its lease to another engine"}\n{"msg":"feed leadership lost to another instance"}\n', { flag: 'a' });
      writeFileSync(log, '{"msg":"resting watcher lost its lease to another engine"}\n', { flag: 'a' });
      const h = windowHealth(before, logCounts(log), 2.5, undefined);
      expect(h).toEqual({ eventLoopLagMaxMs: 2_500, watcherLeaseLost: 2, feedLeadershipLost: 1, restingAtEnd: null });
      expect(windowHealth(undefined, before, undefined, undefined).watcherLeaseLost).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const lat = (p50: number, p99: number): LatencySummary => ({ count: 1000, p50, p95: p99, p99, max: p99 * 2, exact: true });
const proc = (process: string, msPerOrder: number, cores: number, peakMb: number | null = null): ProcessCpu => ({
  process,
  cpuMs: 1,
  msPerOrder,
  cores,
  peakMb,
});

function phase(label: string, filledPerS: number, resting: number, others = 0.1): MarketPhase {
  return {
    label,
    restingInIndex: resting,
    http: { sent: 1, ok: 1, acceptedPerS: filledPerS, latencyMs: lat(20, 50), unfinished: 0 },
    db: { accepted: filledPerS * 30, filled: filledPerS * 30, acceptedPerS: filledPerS, filledPerS, rejected: {}, acceptToFillMs: lat(30, 80) },
    sides: { buy: 1, sell: 1 },
    processes: [
      proc('papertrade (all-in-one)', 0.25, 0.6, 250),
      proc('postgres (this database’s backends + background)', 0.2, 0.5),
      proc('everything else on the machine', 0.1, others),
      proc('whole machine (2 cores)', 0.6, 1.9),
    ],
    postgres: { walBytesPerOrder: 1000, checkpoints: 0, deadlocks: 0 },
    errors: {},
    drain: { ms: 10, pendingLeft: 0 },
    tickEval: { ticks: 4800, meanUs: 4, p50Us: 3, p99Us: 15, p99UpperUs: 20, within50UsShare: 1, maxUpperUs: 100 },
    restingExecutions: 0,
    ordersRowUpdatesPerOrder: 1,
    health: { eventLoopLagMaxMs: 40, watcherLeaseLost: 0, feedLeadershipLost: 0, restingAtEnd: resting },
  };
}

function part(withFilled: number, crossMs: number): RestingPart {
  const idle = (resting: number, heap: number) => ({
    seconds: 20,
    restingInIndex: resting,
    tickEval: { ticks: 3200, meanUs: resting ? 6.5 : 0.8, p50Us: 5, p99Us: 18, p99UpperUs: 20, within50UsShare: 1, maxUpperUs: 50 },
    restingExecutions: 0,
    ordersRowUpdatesPerS: resting ? 500 : 0,
    heap: { min: heap, median: heap + 10_000_000, n: 40 },
    rss: { min: heap * 2, median: heap * 2, n: 40 },
    health: { eventLoopLagMaxMs: 12, watcherLeaseLost: resting ? 2 : 0, feedLeadershipLost: 0, restingAtEnd: resting },
    processes: [proc('papertrade (all-in-one)', 0, resting ? 0.125 : 0.02), proc('bench (load generator)', 0, 0.01)],
  });
  return {
    r: { orders: 100_000, cross: 1_000, crossRepeats: 2, idleS: 20 },
    seededTickers: 40,
    idleWithout: idle(0, 100_000_000),
    idleWith: idle(100_000, 125_000_000),
    gcBefore: { heapUsed: 80_000_000, arrayBuffers: 10_000_000, external: 12_000_000, rss: 200_000_000 },
    gcAfter: { heapUsed: 92_000_000, arrayBuffers: 20_000_000, external: 22_000_000, rss: 240_000_000 },
    gcNote: null,
    placement: { orders: 100_000, ms: 80_000, perS: 1_250, byKind: { limit: 30_000 }, bySide: { buy: 50_000, sell: 50_000 }, indexedAfterMs: 900, concurrency: 64 },
    without: phase('without resting orders', 2_000, 0),
    with: phase('with 100000 resting orders', withFilled, 100_000, 0.5),
    crossings: [0.5, 1].map((f) => ({
      ticker: 'KO',
      orders: 1_000,
      basePrice: '68.0000',
      limitsLow: '67.5920',
      limitsHigh: '67.8640',
      tickPrice: '67.3200',
      sentAtMs: 1_000,
      asOfMs: 1_002,
      sendToAsOfMs: 2,
      asOfToLastFilledAtMs: crossMs * f - 100,
      sendToLastFilledAtMs: crossMs * f - 98,
      asOfToFirstFilledAtMs: 20,
      sendToAllVisibleMs: crossMs * f,
      pollIntervalMs: 10,
      transactions: 2,
      filledAtTickPrice: true,
      executionsCounted: 1_000,
    })),
    checkpoints: { without: 0, with: 1 },
  };
}

const common = {
  timestamp: '2026-12-02T10:00:00.000Z',
  machine: { cpu: 'AMD EPYC', cores: 2, ramGb: 8 },
  versions: { node: 'v20.20.2', postgres: '15.8', redis: '7.2.4', papertrade: 'abc123' },
  settings: {
    mode: 'all-in-one' as const,
    roles: ['papertrade (all-in-one)'],
    loop: 'closed' as const,
    rate: 'max' as const,
    concurrency: 64,
    durationS: 30,
    warmupS: 5,
    users: 1000,
    sellRatio: 0.5,
    quantity: 1,
    seedShares: 100,
    tickers: ['AAPL', 'MSFT'],
    pgPoolMax: 4,
    engineBatchSizeMax: 200,
    feed: 'role' as const,
    database: 'papertrade_bench',
    postgresSettings: { fsync: 'on' },
    redisPrefix: 'ptbench:x:',
    env: {},
  },
  logs: '/tmp/logs',
};

describe('the resting report', () => {
  const build = (withFilled: number, crossMs: number) =>
    restingReport({
      part: part(withFilled, crossMs),
      micro: {
        command: 'node --expose-gc dist/services/trading/resting-index.bench.js',
        orders: 100_000,
        bytesPerOrder: 250,
        figure: 'bytesPerOrder.retained.total',
        callerObjectsBytesPerOrder: 440,
        quietTickMeanUs: 1.2,
        quietTickP99Us: 3.4,
        crossingTickMeanMs: 1.5,
        raw: {},
        error: null,
      },
      audit: { ran: true, ok: true, violations: {}, note: null },
      common,
      embedded: false,
      feedTickMs: 250,
    });

  it('checks the targets', () => {
    const good = build(1_900, 400);
    expect(good.market.filledRatio).toBeCloseTo(0.95);
    expect(good.memory.forcedGc?.heapPerOrder).toBe(220);
    expect(good.memory.noGc.minPerOrder).toBe(250);
    expect(good.targets.map((t) => t.met)).toEqual([true, true, true, true, true]);
    const bad = build(1_500, 1_500);
    expect(bad.targets.map((t) => t.met)).toEqual([true, true, false, true, false]);
  });

  it('renders the targets, the evaluations, both phases side by side and the crossing', () => {
    const md = renderRestingMarkdown(build(1_500, 1_500));
    expect(md).toContain('# papertrade benchmark: resting orders — 2026-12-02T10:00:00.000Z');
    expect(md).toContain('| market orders filled/s with the resting orders ÷ without | ≥ 0.90 | 0.750 | **no** |');
    expect(md).toContain('| **filled orders/s** | 2,000 | 1,500 | 0.750 |');
    expect(md).toContain('| idle 20 s, resting orders placed | 100,000 | 3,200 | 6.50 | 5.00 / 18.0 | 20 | 100.00 % | 12 | 2 |');
    expect(md).toContain('During the idle window with them the process logged 2 lost watcher lease(s)');
    expect(md).toContain('| crossing: one tick under 1,000 limit buys of KO (ms) | #1 | #2 |');
    expect(md).toContain('| **PUT sent → all 1,000 FILLED and visible (polled every 10 ms)** | **750.0** | **1,500.0** |');
    expect(md).toContain('median 1,125 ms, max 1,500 ms');
    expect(md).toContain('| papertrade (all-in-one) | 0.020 | 0.125 |');
    expect(md).toContain('| rows of `orders` updated per second | 0 | 500 |');
    expect(md).not.toContain('| bench (load generator) | 0.010');
    expect(md).toContain('| **engine heapUsed + arrayBuffers, forced full GC** | 85.8 MB | 106.8 MB | **220 B** |');
    expect(md).toContain('| … of which arrayBuffers | 9.5 MB | 19.1 MB | 100 B |');
    expect(md).toContain('**250 B**');
    expect(md).toContain('| cores busy with other processes | 0.10 | 0.50 | |');
    expect(md).toContain('Other processes kept 0.50 cores busy during the window with 100000 resting orders');
    expect(md).toContain('1 PostgreSQL checkpoint(s) during the window with resting orders');
    expect(md).toContain('- Audit: ok, every invariant holds.');
  });
});
