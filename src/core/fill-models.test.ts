import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applySlippage, fillMarket, impactCentiBps, isqrt, latencyMs, seededRandom, type Quote, type RealisticParams } from './fill-models.js';
import { parsePrice, parseQty } from './money.js';

const quote = (bid: string, ask: string, last: string, bidSize = '500', askSize = '500'): Quote => ({
  bid: parsePrice(bid),
  ask: parsePrice(ask),
  last: parsePrice(last),
  bidSize: parseQty(bidSize),
  askSize: parseQty(askSize),
});
const params: RealisticParams = { impactCoefficientBps: 100n, dailyVolume: parseQty('1000000') };

describe('isqrt', () => {
  it('is the floor of the square root', () => {
    expect([0n, 1n, 2n, 3n, 4n, 15n, 16n, 17n, 10n ** 20n].map(isqrt)).toEqual([0n, 1n, 1n, 1n, 2n, 3n, 4n, 4n, 10n ** 10n]);
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 40n }), (n) => {
        const r = isqrt(n);
        return r * r <= n && (r + 1n) * (r + 1n) > n;
      }),
    );
  });
});

describe('fillMarket', () => {
  const q = quote('99.9500', '100.0500', '100.0000');

  it('ideal fills everything at the last price', () => {
    expect(fillMarket('ideal', 'buy', parseQty('10'), q)).toMatchObject({ quantity: parseQty('10'), price: parsePrice('100'), slippageCentiBps: 0n });
  });

  it('spread buys at the ask and sells at the bid', () => {
    expect(fillMarket('spread', 'buy', parseQty('10'), q).price).toBe(parsePrice('100.05'));
    expect(fillMarket('spread', 'sell', parseQty('10'), q).price).toBe(parsePrice('99.95'));
  });

  it('realistic takes at most the displayed size, with a square-root impact against the trader', () => {
    // 100 of a 1,000,000 volume: sqrt(1e-4) = 0.01 → 100 bps × 0.01 = 1 bps.
    const small = fillMarket('realistic', 'buy', parseQty('100'), q, params);
    expect(small).toMatchObject({ quantity: parseQty('100'), slippageCentiBps: 100n });
    expect(small.price).toBe(parsePrice('100.0601')); // 100.05 × 1.0001 = 100.060005, rounded up
    const big = fillMarket('realistic', 'buy', parseQty('50000'), q, params);
    expect(big.quantity).toBe(parseQty('500'));
    expect(big.reason).toMatch(/displayed size/);
    const sell = fillMarket('realistic', 'sell', parseQty('100'), q, params);
    expect(sell.price).toBe(parsePrice('99.9400')); // 99.95 × 0.9999 = 99.940005, rounded down
    expect(fillMarket('realistic', 'buy', parseQty('1'), { ...q, askSize: 0n }, params).quantity).toBe(0n);
  });

  const quotes = fc
    .tuple(fc.bigInt({ min: 1n, max: 10n ** 8n }), fc.bigInt({ min: 0n, max: 10n ** 6n }), fc.bigInt({ min: 0n, max: 10n ** 12n }))
    .map(([bid, spread, size]): Quote => ({ bid, ask: bid + spread, last: bid, bidSize: size, askSize: size }));

  it('in spread and realistic, a buy never fills below the ask and a sell never above the bid (property)', () => {
    fc.assert(
      fc.property(quotes, fc.bigInt({ min: 1n, max: 10n ** 12n }), fc.constantFrom('spread' as const, 'realistic' as const), (qt, qty, model) => {
        const buy = fillMarket(model, 'buy', qty, qt, params);
        const sell = fillMarket(model, 'sell', qty, qt, params);
        const sized = model === 'spread' || (buy.quantity <= qt.askSize && sell.quantity <= qt.bidSize);
        return buy.price >= qt.ask && sell.price <= qt.bid && buy.quantity <= qty && sell.quantity <= qty && sized;
      }),
    );
  });

  it('impact never shrinks as the order grows (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 15n }), fc.bigInt({ min: 0n, max: 10n ** 15n }), (a, b) => {
        const [small, large] = a <= b ? [a, b] : [b, a];
        return impactCentiBps(small, params) <= impactCentiBps(large, params);
      }),
    );
  });

  it('slippage always moves the price against the trader, never to zero', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 10n ** 10n }), fc.bigInt({ min: 0n, max: 10n ** 7n }), (p, bps) => {
        return applySlippage('buy', p, bps) >= p && applySlippage('sell', p, bps) <= p && applySlippage('sell', p, bps) >= 1n;
      }),
    );
  });
});

describe('seeded randomness', () => {
  it('gives the same sequence for the same seed, another for another seed', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const first = [a(), a(), a()];
    expect([b(), b(), b()]).toEqual(first);
    const c = seededRandom(43);
    expect([c(), c(), c()]).not.toEqual(first);
  });

  it('gives each order a latency in [base, base + jitter], the same on every replay', () => {
    const run = (seed: number) => Array.from({ length: 200 }, (_, n) => latencyMs(seed, n, 50, 20));
    const latencies = run(7);
    expect(run(7)).toEqual(latencies);
    expect(Math.min(...latencies)).toBeGreaterThanOrEqual(50);
    expect(Math.max(...latencies)).toBeLessThanOrEqual(70);
    expect(new Set(latencies).size).toBeGreaterThan(10);
    expect(latencyMs(7, 0, 50, 0)).toBe(50);
  });
});
