import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { commissionFor, NO_COMMISSION, type CommissionSchedule } from './commissions.js';
import { parseCash, parsePrice, parseQty } from './money.js';

const schedule = (s: Partial<CommissionSchedule>): CommissionSchedule => ({ ...NO_COMMISSION, ...s });

describe('commissionFor', () => {
  it('charges per order, per share and in basis points, rounded up to the cent', () => {
    expect(commissionFor(schedule({ perOrder: parseCash('1.00') }), parseQty('10'), parsePrice('100'))).toBe(parseCash('1.00'));
    // 333 shares × $0.005 = $1.665 → $1.67
    expect(commissionFor(schedule({ perShare: parsePrice('0.005') }), parseQty('333'), parsePrice('10'))).toBe(parseCash('1.67'));
    // 5 bps of 1234.5678 × 1 = 0.61728… → 0.62
    expect(commissionFor(schedule({ bps: 5n }), parseQty('1'), parsePrice('1234.5678'))).toBe(parseCash('0.62'));
    // All three, summed exactly before the one rounding: 1.00 + 0.0005 + 0.0050 = 1.0055 → 1.01
    expect(commissionFor(schedule({ perOrder: parseCash('1.00'), perShare: parsePrice('0.0005'), bps: 5n }), parseQty('1'), parsePrice('10'))).toBe(parseCash('1.01'));
  });

  it('holds the charge within the minimum and the maximum; nothing is charged by an empty schedule', () => {
    const capped = schedule({ perShare: parsePrice('0.005'), minimum: parseCash('1.00'), maximum: parseCash('5.00') });
    expect(commissionFor(capped, parseQty('1'), parsePrice('10'))).toBe(parseCash('1.00'));
    expect(commissionFor(capped, parseQty('100000'), parsePrice('10'))).toBe(parseCash('5.00'));
    expect(commissionFor(NO_COMMISSION, parseQty('100'), parsePrice('10'))).toBe(0n);
    expect(commissionFor(schedule({ minimum: parseCash('1.00') }), parseQty('100'), parsePrice('10'))).toBe(0n);
  });

  it('never charges less for a larger fill, and always at least the exact value (property)', () => {
    const schedules = fc.record({
      perOrder: fc.bigInt({ min: 0n, max: 1000n }),
      perShare: fc.bigInt({ min: 0n, max: 1000n }),
      bps: fc.bigInt({ min: 0n, max: 100n }),
      minimum: fc.bigInt({ min: 0n, max: 500n }),
      maximum: fc.option(fc.bigInt({ min: 500n, max: 100_000n }), { nil: null }),
    });
    fc.assert(
      fc.property(schedules, fc.bigInt({ min: 1n, max: 10n ** 12n }), fc.bigInt({ min: 1n, max: 10n ** 12n }), fc.bigInt({ min: 1n, max: 10n ** 8n }), (s, a, b, price) => {
        const [small, large] = a <= b ? [a, b] : [b, a];
        const low = commissionFor(s, small, price);
        const high = commissionFor(s, large, price);
        const exactTimes = s.perOrder * 10n ** 12n + small * s.perShare * 10_000n + small * price * s.bps;
        const uncapped = s.maximum === null || low < s.maximum;
        return low <= high && (!uncapped || low * 10n ** 12n >= exactTimes) && (s.maximum === null || high <= s.maximum);
      }),
    );
  });
});
