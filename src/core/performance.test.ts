import { describe, expect, it } from 'vitest';
import {
  ACCUMULATOR_START,
  accumulate,
  drawdownOf,
  formatPct4,
  formatSharpe,
  intervalReturn,
  isqrt,
  maxDrawdownWithLive,
  periodsPerYear,
  profitLossPct,
  rankEntries,
  RATIO_ONE,
  ratioToPct4,
  returnRatio,
  sharpe,
  sqrtRatioHalfUp,
  type Rankable,
} from './performance.js';

/** A ratio written as a decimal (12 decimals at most), for readable expectations. */
const ratio = (text: string): bigint => {
  const negative = text.startsWith('-');
  const [whole, fraction = ''] = (negative ? text.slice(1) : text).split('.');
  const value = BigInt(whole!) * RATIO_ONE + BigInt(fraction.padEnd(12, '0'));
  return negative ? -value : value;
};

const ALWAYS_1MIN = periodsPerYear('always', 60_000);

describe('intervalReturn', () => {
  it('is the gain over the previous equity, flows excluded', () => {
    // 1000.00 -> 1100.00, base unchanged: r = 100 / 1000 = 0.1
    expect(intervalReturn(100_000n, 110_000n, 100_000n, 100_000n)).toBe(ratio('0.1'));
    // 1100.00 -> 990.00: r = -110 / 1100 = -0.1
    expect(intervalReturn(110_000n, 99_000n, 100_000n, 100_000n)).toBe(ratio('-0.1'));
    // A deposit of 500.00: equity 1000.00 -> 1500.00 and base 1000.00 -> 1500.00: no gain, r = 0.
    expect(intervalReturn(100_000n, 150_000n, 100_000n, 150_000n)).toBe(0n);
    // A withdrawal of 300.00 while the positions gained 30.00: E 1500 -> 1230, B 1500 -> 1200:
    // r = (1230 - 1500 - (1200 - 1500)) / 1500 = 30 / 1500 = 0.02
    expect(intervalReturn(150_000n, 123_000n, 150_000n, 120_000n)).toBe(ratio('0.02'));
  });

  it('rounds half-up to 12 decimals and is 0 when nothing was at stake', () => {
    // 3.00 -> 4.00: 1/3 = 0.333333333333|33 -> 0.333333333333 (down)
    expect(intervalReturn(300n, 400n, 0n, 0n)).toBe(333_333_333_333n);
    // 3.00 -> 5.00: 2/3 = 0.666666666666|66 -> 0.666666666667 (up)
    expect(intervalReturn(300n, 500n, 0n, 0n)).toBe(666_666_666_667n);
    // 3.00 -> 2.00: -1/3 -> -0.333333333333 (half-up rounds halves away from zero; this is below a half)
    expect(intervalReturn(300n, 200n, 0n, 0n)).toBe(-333_333_333_333n);
    expect(intervalReturn(0n, 500n, 0n, 0n)).toBe(0n);
    expect(intervalReturn(-100n, 500n, 0n, 0n)).toBe(0n);
  });
});

describe('accumulate', () => {
  it('keeps sums, the index, its peak and the maximum drawdown of a hand-computed series', () => {
    // Equity 1000, 1100, 990, 1089 (base 1000 throughout): r = 0.1, -0.1, 0.1.
    // index: 1.1, 1.1 × 0.9 = 0.99, 0.99 × 1.1 = 1.089; peak 1.1 throughout.
    // drawdown after r2: (1.1 - 0.99) / 1.1 = 0.1; after r3: (1.1 - 1.089) / 1.1 = 0.01. Max 0.1.
    // Σr = 0.1; Σr² = 0.01 + 0.01 + 0.01 = 0.03.
    let acc = ACCUMULATOR_START;
    for (const r of ['0.1', '-0.1', '0.1']) acc = accumulate(acc, ratio(r));
    expect(acc).toEqual({
      sumR: ratio('0.1'),
      sumR2: ratio('0.03') * RATIO_ONE,
      index: ratio('1.089'),
      peak: ratio('1.1'),
      maxDrawdown: ratio('0.1'),
    });
  });

  it('a zero return changes nothing; a return below -100 % floors the index at 0', () => {
    const acc = accumulate(ACCUMULATOR_START, ratio('0.25'));
    expect(accumulate(acc, 0n)).toBe(acc);
    // r = -1.5: 1 + r < 0 -> index 0, drawdown (1.25 - 0) / 1.25 = 1.
    const ruined = accumulate(acc, ratio('-1.5'));
    expect(ruined.index).toBe(0n);
    expect(ruined.maxDrawdown).toBe(RATIO_ONE);
  });

  it('folds a live return into the drawdown without changing the accumulator', () => {
    // Index 1.1 at peak 1.1; a live r of -0.2 gives 0.88: drawdown (1.1 - 0.88) / 1.1 = 0.2.
    const acc = accumulate(ACCUMULATOR_START, ratio('0.1'));
    expect(maxDrawdownWithLive(acc, ratio('-0.2'))).toBe(ratio('0.2'));
    expect(maxDrawdownWithLive(acc, ratio('0.3'))).toBe(0n);
    expect(acc.maxDrawdown).toBe(0n);
    // (3 - 2) / 3 = 0.333333333333|3 -> half-up 0.333333333333
    expect(drawdownOf(3n * RATIO_ONE, 2n * RATIO_ONE)).toBe(333_333_333_333n);
  });
});

describe('sharpe', () => {
  const series = (...rs: string[]) => rs.reduce((acc, r) => accumulate(acc, ratio(r)), ACCUMULATOR_START);

  it('equals the hand computation of a 1-minute series on the always calendar', () => {
    // r = 0.1, -0.1, 0.1: mean = 0.1/3; sample variance = (0.03 - 0.1²/3) / 2 = 0.04/3;
    // mean / s = (0.1/3) / sqrt(0.04/3) = 1/sqrt(12). P = 365 × 24 × 60 = 525600 a year, so
    // Sharpe = sqrt(525600 / 12) = sqrt(43800) = 209.28449536... -> "209.2845".
    expect(formatSharpe(sharpe(series('0.1', '-0.1', '0.1'), 3n, ALWAYS_1MIN, 0n))).toBe('209.2845');
  });

  it('counts intervals without a write as zero returns', () => {
    // One return of 0.1, then two intervals unchanged: n = 3, Σr = 0.1, Σr² = 0.01.
    // mean = 0.1/3, variance = (0.01 - 0.01/3) / 2 = 0.01/3, mean / s = 1/sqrt(3),
    // Sharpe = sqrt(525600 / 3) = sqrt(175200) = 418.56899072... -> "418.5690".
    expect(formatSharpe(sharpe(series('0.1'), 3n, ALWAYS_1MIN, 0n))).toBe('418.5690');
  });

  it('subtracts the risk-free rate per period', () => {
    // rf = 5 % a year = 0.05 / 525600 per minute = 9.5129...e-8. mean - rf = 0.0333332382...,
    // s = sqrt(0.04/3) = 0.1154700538...; × sqrt(525600) = 209.28389809... -> "209.2839".
    expect(formatSharpe(sharpe(series('0.1', '-0.1', '0.1'), 3n, ALWAYS_1MIN, 50_000n))).toBe('209.2839');
  });

  it('is negative for a losing series, with the nyse calendar and a 5-minute interval', () => {
    // nyse: 252 × 390 = 98280 minutes a year, / 5 = 19656 periods. r = 0.1, -0.1, 0.1 as above:
    // Sharpe = sqrt(19656 / 12) = sqrt(1638) = 40.47221268... -> "40.4722".
    expect(formatSharpe(sharpe(series('0.1', '-0.1', '0.1'), 3n, periodsPerYear('nyse', 300_000), 0n))).toBe('40.4722');
    // r = -0.1, 0.05: mean = -0.025, s = 0.15 / sqrt(2) = 0.10606601...; mean / s = -0.23570226...;
    // × sqrt(525600) = 724.98275841... -> -170.88007490... -> "-170.8801".
    expect(formatSharpe(sharpe(series('-0.1', '0.05'), 2n, ALWAYS_1MIN, 0n))).toBe('-170.8801');
  });

  it('is null with fewer than 2 returns or no variance', () => {
    expect(sharpe(series('0.1'), 1n, ALWAYS_1MIN, 0n)).toBeNull();
    expect(sharpe(series('0.1', '0.1', '0.1'), 3n, ALWAYS_1MIN, 0n)).toBeNull();
    expect(sharpe(ACCUMULATOR_START, 10n, ALWAYS_1MIN, 0n)).toBeNull();
  });
});

describe('exact roots', () => {
  it('isqrt is the floor of the square root', () => {
    for (const [n, root] of [[0n, 0n], [1n, 1n], [3n, 1n], [4n, 2n], [99n, 9n], [100n, 10n], [10n ** 40n + 1n, 10n ** 20n]] as const) {
      expect(isqrt(n)).toBe(root);
    }
    const big = 123_456_789_012_345_678_901_234_567_890n;
    const k = isqrt(big);
    expect(k * k <= big && (k + 1n) * (k + 1n) > big).toBe(true);
  });

  it('rounds a root half-up exactly', () => {
    // sqrt(2) = 1.41421356... -> 1.4142; sqrt(2.25) = 1.5 exactly -> at 0 decimals 2 (half up).
    expect(sqrtRatioHalfUp(2n, 1n, 4)).toBe(14_142n);
    expect(sqrtRatioHalfUp(9n, 4n, 0)).toBe(2n);
    // sqrt(0.0001) = 0.01
    expect(sqrtRatioHalfUp(1n, 10_000n, 4)).toBe(100n);
  });
});

describe('return and percents', () => {
  it('(equity - base) / base, half-up to 4 decimals of a percent', () => {
    // 1234.56 on 1000.00: 23.456 %
    expect(formatPct4(profitLossPct(123_456n, 100_000n)!)).toBe('23.4560');
    // 1.00 on 3.00: -66.66666...% -> -66.6667 (half-up away from zero)
    expect(formatPct4(profitLossPct(100n, 300n)!)).toBe('-66.6667');
    expect(profitLossPct(100n, 0n)).toBeNull();
    expect(returnRatio(110_000n, 100_000n)).toBe(ratio('0.1'));
    expect(returnRatio(110_000n, 0n)).toBe(0n);
    // 0.0123456789 -> 1.23456789 % -> 1.2346
    expect(formatPct4(ratioToPct4(12_345_678_900n))).toBe('1.2346');
  });
});

describe('rankEntries', () => {
  const e = (userId: string, ret: string, sharpeValue: bigint | null, dd: string): Rankable => ({
    userId,
    returnRatio: ratio(ret),
    sharpe: sharpeValue,
    maxDrawdown: ratio(dd),
  });
  const entries = [
    e('u-c', '0.05', 12_000n, '0.10'),
    e('u-a', '0.10', null, '0.20'),
    e('u-b', '0.10', 15_000n, '0.10'),
    e('u-d', '-0.02', 15_000n, '0.01'),
    e('u-e', '0.10', null, '0.20'),
  ];
  const order = (metric: 'return' | 'sharpe' | 'max_drawdown') => rankEntries(entries, metric).map((x) => `${x.rank}:${x.userId}`);

  it('by return: higher first, ties by user id', () => {
    expect(order('return')).toEqual(['1:u-a', '2:u-b', '3:u-e', '4:u-c', '5:u-d']);
  });

  it('by sharpe: higher first, null last, ties by return then user id', () => {
    // u-b and u-d tie at 1.5000: u-b has the higher return. u-a and u-e are null: by user id.
    expect(order('sharpe')).toEqual(['1:u-b', '2:u-d', '3:u-c', '4:u-a', '5:u-e']);
  });

  it('by max drawdown: smaller first, ties by return then user id', () => {
    // 0.01 u-d; 0.10 u-b (return 0.10) before u-c (0.05); 0.20 u-a before u-e.
    expect(order('max_drawdown')).toEqual(['1:u-d', '2:u-b', '3:u-c', '4:u-a', '5:u-e']);
  });

  it('does not depend on the input order', () => {
    const reversed = rankEntries([...entries].reverse(), 'sharpe').map((x) => x.userId);
    expect(reversed).toEqual(rankEntries(entries, 'sharpe').map((x) => x.userId));
  });
});
