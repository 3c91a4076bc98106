import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatPrice, parsePrice } from '../../core/money.js';
import { BarAggregator, bucketOf, type Bar } from './bars.js';
import type { Tick } from './feed.js';

const T0 = Date.UTC(2024, 0, 2, 14, 30); // a minute boundary
const tick = (ticker: string, price: string, asOfMs: number): Tick => ({ ticker, price: parsePrice(price), asOfMs });
const show = (b: Bar) => ({
  ticker: b.ticker,
  t: new Date(b.bucketMs).toISOString(),
  ohlc: [b.open, b.high, b.low, b.close].map(formatPrice).join(' '),
  ticks: b.tickCount,
});

describe('bucketOf', () => {
  it('floors a time to the start of its minute', () => {
    expect(bucketOf(T0)).toBe(T0);
    expect(bucketOf(T0 + 59_999)).toBe(T0);
    expect(bucketOf(T0 + 60_000)).toBe(T0 + 60_000);
  });
});

describe('BarAggregator', () => {
  it('builds OHLC from a known tick sequence and rolls over at the minute', () => {
    const bars = new BarAggregator();
    bars.add([tick('AAPL', '100', T0 + 1_000), tick('MSFT', '300', T0 + 1_000)]);
    bars.add([tick('AAPL', '103.5', T0 + 20_000)]);
    bars.add([tick('AAPL', '99.25', T0 + 40_000)]);
    bars.add([tick('AAPL', '101', T0 + 59_999)]);
    expect(bars.hasFinished()).toBe(false);
    bars.add([tick('AAPL', '102', T0 + 60_000)]); // next minute
    expect(bars.hasFinished()).toBe(true);
    expect(bars.drain().map(show)).toEqual([
      { ticker: 'AAPL', t: '2024-01-02T14:30:00.000Z', ohlc: '100.0000 103.5000 99.2500 101.0000', ticks: 4 },
      { ticker: 'AAPL', t: '2024-01-02T14:31:00.000Z', ohlc: '102.0000 102.0000 102.0000 102.0000', ticks: 1 },
      { ticker: 'MSFT', t: '2024-01-02T14:30:00.000Z', ohlc: '300.0000 300.0000 300.0000 300.0000', ticks: 1 },
    ]);
    expect(bars.hasFinished()).toBe(false);
  });

  it('drains only bars with ticks not yet written, each tick counted once, the prices whole', () => {
    const bars = new BarAggregator();
    bars.add([tick('AAPL', '100', T0), tick('MSFT', '300', T0)]);
    expect(bars.drain()).toHaveLength(2);
    expect(bars.drain()).toEqual([]);
    bars.add([tick('AAPL', '105', T0 + 5_000)]);
    // The bar as a whole (open 100) but only the one new tick to add to the stored count.
    expect(bars.drain().map(show)).toEqual([
      { ticker: 'AAPL', t: '2024-01-02T14:30:00.000Z', ohlc: '100.0000 105.0000 100.0000 105.0000', ticks: 1 },
    ]);
  });

  it('gives failed writes back without counting a tick twice, even across a rollover', () => {
    const bars = new BarAggregator();
    bars.add([tick('AAPL', '100', T0), tick('AAPL', '101', T0 + 1_000)]);
    const failed = bars.drain();
    bars.add([tick('AAPL', '99', T0 + 2_000)]); // same minute, after the drain
    bars.requeue(failed);
    bars.add([tick('AAPL', '98', T0 + 61_000)]); // rollover
    const retried = bars.drain();
    expect(retried.map(show)).toEqual([
      { ticker: 'AAPL', t: '2024-01-02T14:30:00.000Z', ohlc: '100.0000 101.0000 99.0000 99.0000', ticks: 3 },
      { ticker: 'AAPL', t: '2024-01-02T14:31:00.000Z', ohlc: '98.0000 98.0000 98.0000 98.0000', ticks: 1 },
    ]);

    // A failed write of a minute that finished meanwhile merges into the finished copy.
    const again = new BarAggregator();
    again.add([tick('AAPL', '100', T0)]);
    const lost = again.drain();
    again.add([tick('AAPL', '101', T0 + 30_000), tick('AAPL', '102', T0 + 60_000)]);
    again.requeue(lost);
    expect(again.drain().map(show)).toEqual([
      { ticker: 'AAPL', t: '2024-01-02T14:30:00.000Z', ohlc: '100.0000 101.0000 100.0000 101.0000', ticks: 2 },
      { ticker: 'AAPL', t: '2024-01-02T14:31:00.000Z', ohlc: '102.0000 102.0000 102.0000 102.0000', ticks: 1 },
    ]);
  });

  it('folds a tick from an earlier minute (the clock stepped back) into the current bar', () => {
    const bars = new BarAggregator();
    bars.add([tick('AAPL', '100', T0 + 60_000), tick('AAPL', '90', T0 + 59_000)]);
    expect(bars.drain().map(show)).toEqual([
      { ticker: 'AAPL', t: '2024-01-02T14:31:00.000Z', ohlc: '100.0000 100.0000 90.0000 90.0000', ticks: 2 },
    ]);
  });

  it('keeps at most the configured number of finished bars, dropping the oldest and counting them', () => {
    const bars = new BarAggregator(3);
    for (let m = 0; m < 6; m++) bars.add([tick('AAPL', '100', T0 + m * 60_000)]);
    expect(bars.droppedBars).toBe(2);
    expect(bars.drain().map((b) => b.bucketMs)).toEqual([2, 3, 4, 5].map((m) => T0 + m * 60_000));
  });

  it('keeps low <= open, close <= high and counts every tick (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ ticker: fc.constantFrom('A', 'B'), price: fc.bigInt({ min: 1n, max: 10_000_000n }), dt: fc.integer({ min: 0, max: 30_000 }) }), {
          maxLength: 200,
        }),
        (steps) => {
          const bars = new BarAggregator();
          let now = T0;
          const written: Bar[] = [];
          for (const [i, s] of steps.entries()) {
            now += s.dt;
            bars.add([{ ticker: s.ticker, price: s.price, asOfMs: now }]);
            if (i % 7 === 0) written.push(...bars.drain());
          }
          written.push(...bars.drain());
          const total = written.reduce((n, b) => n + b.tickCount, 0);
          return total === steps.length && written.every((b) => b.low <= b.open && b.low <= b.close && b.open <= b.high && b.close <= b.high);
        },
      ),
    );
  });
});
