import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applySlippage, fillMarket, impactCentiBps, isqrt, latencyMs, modelExecution, seededRandom, type Quote, type RealisticParams } from './fill-models.js';
import { LIQUIDITY_TIERS, TIER_PARAMS } from './liquidity.js';
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

describe('fill model properties (seeded)', () => {
  const RUN = { seed: 1_234_567, numRuns: 300 };
  const arbQuote = fc
    .tuple(fc.bigInt({ min: 1n, max: 10n ** 8n }), fc.bigInt({ min: 0n, max: 10n ** 5n }), fc.bigInt({ min: 0n, max: 10n ** 5n }), fc.bigInt({ min: 0n, max: 10n ** 11n }), fc.bigInt({ min: 0n, max: 10n ** 11n }))
    .map(([bid, toLast, toAsk, bidSize, askSize]): Quote => ({ bid, last: bid + toLast, ask: bid + toLast + toAsk, bidSize, askSize }));
  const arbParams = fc.constantFrom(...LIQUIDITY_TIERS).map((t): RealisticParams => ({ impactCoefficientBps: TIER_PARAMS[t].impactCoefficientBps, dailyVolume: TIER_PARAMS[t].dailyVolume }));
  const qty = fc.bigInt({ min: 1n, max: 10n ** 12n });
  const side = fc.constantFrom('buy' as const, 'sell' as const);

  it('spread: a market buy fills everything exactly at the ask (never below), a sell exactly at the bid (never above)', () => {
    fc.assert(
      fc.property(arbQuote, qty, (q, n) => {
        const buy = fillMarket('spread', 'buy', n, q);
        const sell = fillMarket('spread', 'sell', n, q);
        return buy.price === q.ask && buy.quantity === n && sell.price === q.bid && sell.quantity === n && buy.slippageCentiBps === 0n && sell.slippageCentiBps === 0n;
      }),
      RUN,
    );
  });

  it('spread: a limit buy fills only when the ask is at or below the limit, and then at the ask; a limit sell likewise at the bid', () => {
    fc.assert(
      fc.property(arbQuote, qty, fc.bigInt({ min: 1n, max: 2n * 10n ** 8n }), (q, n, limit) => {
        const buy = modelExecution('spread', { side: 'buy', remaining: n, limit }, q);
        const sell = modelExecution('spread', { side: 'sell', remaining: n, limit }, q);
        const buyOk = q.ask <= limit ? buy.quantity === n && buy.price === q.ask : buy.quantity === 0n && /has not reached the limit/.test(buy.reason);
        const sellOk = q.bid >= limit ? sell.quantity === n && sell.price === q.bid : sell.quantity === 0n;
        return buyOk && sellOk;
      }),
      RUN,
    );
    const q = quote('99.9500', '100.0500', '100.0000');
    expect(modelExecution('spread', { side: 'buy', remaining: parseQty('5'), limit: parsePrice('100.05') }, q)).toMatchObject({ quantity: parseQty('5'), price: parsePrice('100.05') });
    expect(modelExecution('spread', { side: 'buy', remaining: parseQty('5'), limit: parsePrice('100.0499') }, q).quantity).toBe(0n);
  });

  it('realistic: impactCentiBps is non-decreasing in the quantity, for every tier', () => {
    fc.assert(
      fc.property(arbParams, fc.bigInt({ min: 0n, max: 10n ** 14n }), fc.bigInt({ min: 0n, max: 10n ** 12n }), (p, a, extra) => impactCentiBps(a, p) <= impactCentiBps(a + extra, p)),
      RUN,
    );
    expect(impactCentiBps(0n, params)).toBe(0n);
  });

  it('realistic: a buy pays at least the ask, more the more the order filled before (same part)', () => {
    fc.assert(
      fc.property(arbQuote, arbParams, qty, fc.bigInt({ min: 0n, max: 10n ** 12n }), fc.bigInt({ min: 0n, max: 10n ** 12n }), (q0, p, n, b1, extra) => {
        const q = { ...q0, askSize: q0.askSize + 1n, bidSize: q0.bidSize + 1n };
        const first = modelExecution('realistic', { side: 'buy', remaining: n, filledBefore: b1 }, q, p);
        const later = modelExecution('realistic', { side: 'buy', remaining: n, filledBefore: b1 + extra }, q, p);
        const sellFirst = modelExecution('realistic', { side: 'sell', remaining: n, filledBefore: b1 }, q, p);
        const sellLater = modelExecution('realistic', { side: 'sell', remaining: n, filledBefore: b1 + extra }, q, p);
        return (
          first.price >= q.ask &&
          later.quantity === first.quantity &&
          later.price >= first.price &&
          sellFirst.price <= q.bid &&
          sellLater.price <= sellFirst.price
        );
      }),
      RUN,
    );
  });

  it('realistic: never fills more than the displayed size (or the remaining) in one call', () => {
    fc.assert(
      fc.property(arbQuote, arbParams, qty, side, fc.bigInt({ min: 0n, max: 10n ** 12n }), (q, p, n, s, before) => {
        const d = modelExecution('realistic', { side: s, remaining: n, filledBefore: before }, q, p);
        const displayed = s === 'buy' ? q.askSize : q.bidSize;
        return d.quantity <= displayed && d.quantity <= n && d.quantity >= 0n && (displayed === 0n ? d.quantity === 0n : d.quantity === (n < displayed ? n : displayed));
      }),
      RUN,
    );
  });

  it('realistic: a limit never fills beyond the limit, and takes the most the limit allows', () => {
    fc.assert(
      fc.property(arbQuote, arbParams, qty, side, fc.bigInt({ min: 0n, max: 10n ** 11n }), fc.bigInt({ min: 0n, max: 2_000n }), (q, p, n, s, before, offsetBps) => {
        const touch = s === 'buy' ? q.ask : q.bid;
        // Limits at and a little beyond the touch, so the search for the largest quantity is exercised.
        const limit = s === 'buy' ? touch + (touch * offsetBps) / 10_000n : touch - (touch * offsetBps) / 10_000n;
        if (limit <= 0n) return true;
        const d = modelExecution('realistic', { side: s, remaining: n, filledBefore: before, limit }, q, p);
        const ok = (price: bigint) => (s === 'buy' ? price <= limit : price >= limit);
        if (d.quantity === 0n) {
          // Nothing only when nothing is displayed or even the smallest part would pass the limit.
          const displayedNone = (s === 'buy' ? q.askSize : q.bidSize) === 0n;
          return displayedNone || !ok(applySlippage(s, touch, impactCentiBps(before + 1n, p)));
        }
        const within = ok(d.price);
        const cap = n < (s === 'buy' ? q.askSize : q.bidSize) ? n : s === 'buy' ? q.askSize : q.bidSize;
        if (d.quantity === cap) return within;
        // Limited: one more unit would pass the limit.
        const more = applySlippage(s, touch, impactCentiBps(before + d.quantity + 1n, p));
        return within && (s === 'buy' ? more > limit : more < limit) && /the most the limit allows/.test(d.reason);
      }),
      RUN,
    );
  });

  it('ideal fills everything at the last price, whatever the touch, size or limit', () => {
    fc.assert(
      fc.property(arbQuote, arbParams, qty, side, fc.option(fc.bigInt({ min: 1n, max: 10n ** 8n }), { nil: null }), (q, p, n, s, limit) => {
        const d = modelExecution('ideal', { side: s, remaining: n, limit }, q, p);
        return d.quantity === n && d.price === q.last && d.slippageCentiBps === 0n;
      }),
      RUN,
    );
  });

  it('seededRandom: the same seed gives the same sequence of 32-bit values (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 1, max: 50 }), (seed, n) => {
        const a = seededRandom(seed);
        const b = seededRandom(seed);
        const xs = Array.from({ length: n }, () => a());
        const ys = Array.from({ length: n }, () => b());
        return xs.every((x, i) => x === ys[i] && Number.isInteger(x) && x >= 0 && x <= 0xffffffff);
      }),
      RUN,
    );
  });

  it('latencyMs: within [base, base + jitter] and the same for the same seed and order number (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.nat(100_000), fc.nat(10_000), fc.nat(10_000), (seed, n, base, jitter) => {
        const l = latencyMs(seed, n, base, jitter);
        return Number.isInteger(l) && l >= base && l <= base + jitter && latencyMs(seed, n, base, jitter) === l;
      }),
      RUN,
    );
    expect(() => latencyMs(1, -1, 0, 0)).toThrow();
    expect(() => latencyMs(1, 0, 1.5, 0)).toThrow();
  });
});
