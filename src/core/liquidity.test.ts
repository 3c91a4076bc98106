import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { displayedSize, isLiquidityTier, LIQUIDITY_TIERS, spreadAround, TIER_PARAMS, touchFor, touchOrDefault } from './liquidity.js';
import { parsePrice, parseQty, QTY_SCALE } from './money.js';

const SHARE = 10n ** BigInt(QTY_SCALE);
const SEED = { seed: 20_240_611, numRuns: 500 };

describe('spreadAround', () => {
  it('puts half the spread on each side of a price it divides exactly', () => {
    // 100.0000 at 10 bps: 0.10 wide, 0.05 each side.
    expect(spreadAround(parsePrice('100'), 10n)).toEqual({ bid: parsePrice('99.95'), ask: parsePrice('100.05') });
    expect(spreadAround(parsePrice('150'), 2n)).toEqual({ bid: parsePrice('149.985'), ask: parsePrice('150.015') });
  });

  it('is never narrower than the spread asked and at most one tick wider (concrete uneven prices)', () => {
    // 100.0001 at 2 bps: exact width 200.0002 ticks; a width of 201 is the least whole one.
    const a = spreadAround(1_000_001n, 2n);
    expect(a.ask - a.bid).toBe(201n);
    expect(a.bid).toBeLessThanOrEqual(1_000_001n);
    expect(a.ask).toBeGreaterThanOrEqual(1_000_001n);
    // 12.3457 at 10 bps: exact width 123.457 ticks → 124.
    const b = spreadAround(123_457n, 10n);
    expect(b.ask - b.bid).toBe(124n);
  });

  it('bid ≤ last ≤ ask, width ≥ the spread asked and within one tick of it, bid ≥ one tick (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 10n ** 10n }), fc.bigInt({ min: 0n, max: 10_000n }), (last, bps) => {
        const { bid, ask } = spreadAround(last, bps);
        const width = ask - bid;
        // Exact requested width in ticks is last × bps / 10,000; compare scaled by 10,000 to stay exact.
        const requested = last * bps;
        return bid >= 1n && bid <= last && last <= ask && width * 10_000n >= requested && width * 10_000n < requested + 10_000n;
      }),
      SEED,
    );
  });

  it('is never narrower than asked even when the bid is held at one tick', () => {
    // One tick at 100 %: exact width 1 tick; the bid cannot go below one tick, so the ask moves up.
    expect(spreadAround(1n, 10_000n)).toEqual({ bid: 1n, ask: 2n });
    expect(spreadAround(1n, 1n)).toEqual({ bid: 1n, ask: 2n });
    // A spread wider than the price itself still gets its whole width above the one-tick bid.
    const wide = spreadAround(100n, 30_000n);
    expect(wide.bid).toBe(1n);
    expect(wide.ask - wide.bid).toBeGreaterThanOrEqual(300n);
    expect(wide.ask - wide.bid).toBeLessThanOrEqual(301n);
  });

  it('with 0 bps, bid = ask = last (property)', () => {
    expect(spreadAround(parsePrice('123.4567'), 0n)).toEqual({ bid: parsePrice('123.4567'), ask: parsePrice('123.4567') });
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 10n ** 12n }), (last) => {
        const { bid, ask } = spreadAround(last, 0n);
        return bid === last && ask === last;
      }),
      SEED,
    );
  });

  it('refuses a non-positive price or a negative spread', () => {
    expect(() => spreadAround(0n, 10n)).toThrow();
    expect(() => spreadAround(-5n, 10n)).toThrow();
    expect(() => spreadAround(100n, -1n)).toThrow();
  });
});

describe('displayedSize', () => {
  it('is whole shares within the tier’s least and most, the same for the same draw (property)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...LIQUIDITY_TIERS), fc.nat(), (tier, draw) => {
        const p = TIER_PARAMS[tier];
        const size = displayedSize(p, draw);
        return size >= p.displayedSizeMin && size <= p.displayedSizeMax && size % SHARE === 0n && displayedSize(p, draw) === size;
      }),
      SEED,
    );
  });

  it('reaches both ends of the range', () => {
    const p = TIER_PARAMS.small; // 1,000 to 3,000 shares: 2,001 values.
    expect(displayedSize(p, 0)).toBe(parseQty('1000'));
    expect(displayedSize(p, 2000)).toBe(parseQty('3000'));
    expect(displayedSize(p, 2001)).toBe(parseQty('1000'));
  });

  it('refuses a draw that is not a whole non-negative number', () => {
    expect(() => displayedSize(TIER_PARAMS.mid, -1)).toThrow();
    expect(() => displayedSize(TIER_PARAMS.mid, 1.5)).toThrow();
  });
});

describe('touchFor', () => {
  it('uses the tier’s spread and displayed sizes', () => {
    for (const tier of LIQUIDITY_TIERS) {
      const p = TIER_PARAMS[tier];
      const last = parsePrice('87.6543');
      const t = touchFor(last, tier, 7, 123_456);
      expect({ bid: t.bid, ask: t.ask }).toEqual(spreadAround(last, p.spreadBps));
      expect(t.bidSize).toBe(displayedSize(p, 7));
      expect(t.askSize).toBe(displayedSize(p, 123_456));
    }
    // The tiers differ: a small-cap spread is wider than a large-cap one at the same price.
    const large = touchFor(parsePrice('100'), 'large', 0, 0);
    const small = touchFor(parsePrice('100'), 'small', 0, 0);
    expect(small.ask - small.bid).toBeGreaterThan(large.ask - large.bid);
    expect(large).toEqual({ bid: parsePrice('99.99'), ask: parsePrice('100.01'), bidSize: parseQty('5000'), askSize: parseQty('5000') });
    expect(small).toEqual({ bid: parsePrice('99.80'), ask: parsePrice('100.20'), bidSize: parseQty('1000'), askSize: parseQty('1000') });
  });
});

describe('touchOrDefault', () => {
  it('fills missing sides with the last price and the tier’s least size', () => {
    expect(touchOrDefault({ price: parsePrice('42') }, 'small')).toEqual({
      bid: parsePrice('42'),
      ask: parsePrice('42'),
      bidSize: TIER_PARAMS.small.displayedSizeMin,
      askSize: TIER_PARAMS.small.displayedSizeMin,
    });
    expect(touchOrDefault({ price: parsePrice('42'), bid: undefined, ask: undefined }, 'large').bidSize).toBe(TIER_PARAMS.large.displayedSizeMin);
  });

  it('keeps the sides that are present', () => {
    const q = { price: parsePrice('42'), bid: parsePrice('41.99'), askSize: parseQty('777') };
    expect(touchOrDefault(q, 'mid')).toEqual({ bid: parsePrice('41.99'), ask: parsePrice('42'), bidSize: TIER_PARAMS.mid.displayedSizeMin, askSize: parseQty('777') });
    const full = { price: parsePrice('42'), bid: parsePrice('41.9'), ask: parsePrice('42.1'), bidSize: parseQty('1'), askSize: parseQty('2') };
    expect(touchOrDefault(full, 'small')).toEqual({ bid: full.bid, ask: full.ask, bidSize: full.bidSize, askSize: full.askSize });
  });
});

describe('isLiquidityTier', () => {
  it('accepts exactly the three tiers', () => {
    for (const tier of LIQUIDITY_TIERS) expect(isLiquidityTier(tier)).toBe(true);
    for (const other of ['LARGE', 'micro', '', ' mid', 1, null, undefined, {}, ['large']]) expect(isLiquidityTier(other)).toBe(false);
  });
});
