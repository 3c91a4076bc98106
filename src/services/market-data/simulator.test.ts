import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AssertionFailed } from '../../core/errors.js';
import { PRICE_MAX, parsePrice, type Price } from '../../core/money.js';
import type { Tick } from './feed.js';
import { SeededRandom } from '../../infra/random.js';
import {
  GbmSimulator,
  SIMULATED_PRICE_MIN,
  SimulatorFeed,
  TRADING_SECONDS_PER_YEAR,
  simulatedPriceToPrice,
  type SimulatedInstrument,
} from './simulator.js';

const price = (s: string) => parsePrice(s);

const universe: SimulatedInstrument[] = [
  { ticker: 'AAPL', startPrice: price('230.0000'), annualVolatility: 0.25 },
  { ticker: 'MSFT', startPrice: price('420.0000'), annualVolatility: 0.24 },
  { ticker: 'TSLA', startPrice: price('250.0000'), annualVolatility: 0.6 },
];

function path(sim: GbmSimulator, steps: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < steps; i++) out.push(sim.step(i).map((t) => `${t.ticker}=${t.price}`).join(','));
  return out;
}

/** Log returns of one ticker along a path (test statistics only; prices stay bigint elsewhere). */
function logReturns(series: Price[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < series.length; i++) out.push(Math.log(Number(series[i]!) / Number(series[i - 1]!)));
  return out;
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function stdev(xs: number[]): number {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

function correlation(xs: number[], ys: number[]): number {
  const mx = mean(xs);
  const my = mean(ys);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < xs.length; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
    syy += (ys[i]! - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

function series(sim: GbmSimulator, steps: number): Map<string, Price[]> {
  const out = new Map<string, Price[]>();
  for (const t of sim.current(0)) out.set(t.ticker, [t.price]);
  for (let i = 0; i < steps; i++) for (const t of sim.step(i)) out.get(t.ticker)!.push(t.price);
  return out;
}

describe('SeededRandom', () => {
  it('repeats the same sequence for the same seed and a different one for another seed', () => {
    const draw = (seed: number) => {
      const r = new SeededRandom(seed);
      return Array.from({ length: 100 }, () => r.nextUint32());
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
  });

  it('draws uniforms strictly inside (0, 1) and normals with mean 0 and variance 1', () => {
    const r = new SeededRandom(7);
    const normals: number[] = [];
    for (let i = 0; i < 50_000; i++) {
      const u = r.nextUniform();
      expect(u > 0 && u < 1).toBe(true);
      normals.push(r.nextNormal());
    }
    expect(Math.abs(mean(normals))).toBeLessThan(0.02);
    expect(Math.abs(stdev(normals) - 1)).toBeLessThan(0.02);
  });
});

describe('simulatedPriceToPrice', () => {
  it('rounds to the nearest 1/10,000, halves up', () => {
    expect(simulatedPriceToPrice(152.12344)).toBe(1_521_234n);
    expect(simulatedPriceToPrice(152.12346)).toBe(1_521_235n);
    // 0.00025 × 10^4 is exactly 2.5 in binary floating point: the half goes up.
    expect(simulatedPriceToPrice(0.00025)).toBe(3n);
  });

  it('never returns a price at or below zero, nor above the maximum', () => {
    expect(simulatedPriceToPrice(0)).toBe(SIMULATED_PRICE_MIN);
    expect(simulatedPriceToPrice(-5)).toBe(SIMULATED_PRICE_MIN);
    expect(simulatedPriceToPrice(1e-300)).toBe(SIMULATED_PRICE_MIN);
    expect(simulatedPriceToPrice(1e300)).toBe(PRICE_MAX);
    expect(simulatedPriceToPrice(Infinity)).toBe(PRICE_MAX);
  });

  it('treats NaN as a programmer error', () => {
    expect(() => simulatedPriceToPrice(Number.NaN)).toThrow(AssertionFailed);
  });
});

describe('GbmSimulator', () => {
  const options = { seed: 42, tickMs: 250, correlation: 0.5 };

  it('follows the same path for the same seed, whatever order the instruments come in', () => {
    const a = path(new GbmSimulator(universe, options), 2_000);
    const b = path(new GbmSimulator([...universe].reverse(), options), 2_000);
    expect(a).toEqual(b);
  });

  it('follows a different path for a different seed', () => {
    const a = path(new GbmSimulator(universe, options), 50);
    const b = path(new GbmSimulator(universe, { ...options, seed: 43 }), 50);
    expect(a).not.toEqual(b);
    // Every ticker differs somewhere, not only the first.
    for (const ticker of ['AAPL', 'MSFT', 'TSLA']) {
      expect(a.map((s) => s.split(',').find((p) => p.startsWith(ticker)))).not.toEqual(
        b.map((s) => s.split(',').find((p) => p.startsWith(ticker))),
      );
    }
  });

  it('starts exactly at the given prices, so a restarted feed does not jump', () => {
    const sim = new GbmSimulator(universe, options);
    expect(sim.current(123).map((t) => [t.ticker, t.price, t.asOfMs])).toEqual([
      ['AAPL', price('230.0000'), 123],
      ['MSFT', price('420.0000'), 123],
      ['TSLA', price('250.0000'), 123],
    ]);
  });

  it('never emits a non-positive price over 100,000 steps of extreme volatility', () => {
    const sim = new GbmSimulator(
      [
        { ticker: 'PENNY', startPrice: 1n, annualVolatility: 10 },
        { ticker: 'WILD', startPrice: price('50.0000'), annualVolatility: 50 },
        { ticker: 'HUGE', startPrice: PRICE_MAX, annualVolatility: 25 },
      ],
      { seed: 1, tickMs: 60_000, correlation: 0.3 },
    );
    let min = PRICE_MAX;
    let max = 0n;
    for (let i = 0; i < 100_000; i++) {
      for (const t of sim.step(i)) {
        if (t.price < min) min = t.price;
        if (t.price > max) max = t.price;
      }
    }
    expect(min).toBeGreaterThanOrEqual(SIMULATED_PRICE_MIN);
    expect(max).toBeLessThanOrEqual(PRICE_MAX);
  });

  it('keeps every price within bounds for any seed, volatility and start (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.double({ min: 0, max: 20, noNaN: true }),
        fc.bigInt({ min: 1n, max: PRICE_MAX }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (seed, vol, start, correlation) => {
          const sim = new GbmSimulator(
            [
              { ticker: 'A', startPrice: start, annualVolatility: vol },
              { ticker: 'B', startPrice: start, annualVolatility: vol / 2 },
            ],
            { seed, tickMs: 1_000, correlation },
          );
          for (let i = 0; i < 200; i++) {
            for (const t of sim.step(i)) {
              if (t.price < SIMULATED_PRICE_MIN || t.price > PRICE_MAX) return false;
            }
          }
          return true;
        },
      ),
      { numRuns: 200 },
    );
  });

  it('moves each ticker with the configured volatility per tick (stdev of log returns within 3 %)', () => {
    const tickMs = 250;
    const vols = [0.25, 0.6];
    const sim = new GbmSimulator(
      [
        { ticker: 'LOW', startPrice: price('1000.0000'), annualVolatility: vols[0]! },
        { ticker: 'HIGH', startPrice: price('1000.0000'), annualVolatility: vols[1]! },
      ],
      { seed: 2024, tickMs, correlation: 0.5 },
    );
    const s = series(sim, 40_000);
    const dtYears = tickMs / 1000 / TRADING_SECONDS_PER_YEAR;
    for (const [ticker, vol] of [['LOW', vols[0]!], ['HIGH', vols[1]!]] as const) {
      const returns = logReturns(s.get(ticker)!);
      const expected = vol * Math.sqrt(dtYears);
      expect(Math.abs(stdev(returns) / expected - 1)).toBeLessThan(0.03);
      // No drift to speak of: the mean is within a few standard errors of zero.
      expect(Math.abs(mean(returns))).toBeLessThan((4 * expected) / Math.sqrt(returns.length));
    }
  });

  it('correlates tickers through the market factor as configured', () => {
    for (const rho of [0, 0.5, 0.9]) {
      const sim = new GbmSimulator(
        [
          { ticker: 'X', startPrice: price('500.0000'), annualVolatility: 0.4 },
          { ticker: 'Y', startPrice: price('800.0000'), annualVolatility: 0.3 },
        ],
        { seed: 99, tickMs: 1_000, correlation: rho },
      );
      const s = series(sim, 20_000);
      const r = correlation(logReturns(s.get('X')!), logReturns(s.get('Y')!));
      expect(Math.abs(r - rho)).toBeLessThan(0.05);
    }
  });

  it('refuses a correlation outside [0, 1]', () => {
    expect(() => new GbmSimulator(universe, { ...options, correlation: 1.5 })).toThrow(AssertionFailed);
  });
});

describe('SimulatorFeed', () => {
  it('publishes the starting prices first, then one step per tick interval, until aborted', async () => {
    const sim = new GbmSimulator(universe, { seed: 5, tickMs: 20, correlation: 0.5 });
    const reference = new GbmSimulator(universe, { seed: 5, tickMs: 20, correlation: 0.5 });
    const feed = new SimulatorFeed(sim, 20);
    const batches: { at: number; ticks: Tick[] }[] = [];
    const controller = new AbortController();
    const done = feed.run(async (ticks) => {
      batches.push({ at: Date.now(), ticks });
      if (batches.length === 6) controller.abort();
    }, controller.signal);
    await done;
    expect(batches).toHaveLength(6);
    expect(batches[0]!.ticks.map((t) => t.price)).toEqual(reference.current(0).map((t) => t.price));
    for (let i = 1; i < 6; i++) {
      expect(batches[i]!.ticks.map((t) => t.price)).toEqual(reference.step(0).map((t) => t.price));
    }
    // Paced by the tick interval: five steps take about five intervals (unpaced they would take
    // ~0 ms). The first batch's timestamp is taken after its publish, which may be late by a few
    // milliseconds while the schedule keeps to its own clock: allow one interval of that.
    expect(batches[5]!.at - batches[0]!.at).toBeGreaterThanOrEqual(4 * 20);
  });
});
