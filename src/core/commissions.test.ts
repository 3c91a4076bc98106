import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { commissionFor, commissionForValue, commissionIncrement, commissionScheduleToJson, COMMISSION_BPS_MAX, NO_COMMISSION, parseCommissionSchedule, type CommissionSchedule } from './commissions.js';
import { ValidationError } from './errors.js';
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

const RUN = { seed: 9_876_543, numRuns: 500 };
const arbSchedule = fc
  .record({
    perOrder: fc.bigInt({ min: 0n, max: 100_000n }),
    perShare: fc.bigInt({ min: 0n, max: 10_000n }),
    bps: fc.bigInt({ min: 0n, max: COMMISSION_BPS_MAX }),
    minimum: fc.bigInt({ min: 0n, max: 100_000n }),
    cap: fc.option(fc.bigInt({ min: 0n, max: 1_000_000n }), { nil: null }),
  })
  .map(({ cap, ...s }): CommissionSchedule => ({ ...s, maximum: cap === null ? null : s.minimum + cap }));

describe('commission bounds (properties)', () => {
  it('is never negative, at least the minimum when it charges anything, at most the maximum, zero when the schedule is all zeros', () => {
    fc.assert(
      fc.property(arbSchedule, fc.bigInt({ min: 1n, max: 10n ** 12n }), fc.bigInt({ min: 1n, max: 10n ** 8n }), (s, qty, price) => {
        const c = commissionFor(s, qty, price);
        const anyRate = s.perOrder > 0n || s.perShare > 0n || s.bps > 0n;
        return (
          c >= 0n &&
          (anyRate ? c >= s.minimum || (s.maximum !== null && c === s.maximum) : c === 0n) &&
          (s.maximum === null || c <= s.maximum) &&
          c === commissionForValue(s, qty, qty * price)
        );
      }),
      RUN,
    );
  });

  it('charges exactly the minimum for a small fill and exactly the maximum for a large one', () => {
    const s = schedule({ bps: 10n, minimum: parseCash('2.50'), maximum: parseCash('40.00') });
    expect(commissionFor(s, parseQty('1'), parsePrice('10'))).toBe(parseCash('2.50')); // 0.01 → 2.50
    expect(commissionFor(s, parseQty('1000'), parsePrice('10'))).toBe(parseCash('10.00'));
    expect(commissionFor(s, parseQty('1000000'), parsePrice('10'))).toBe(parseCash('40.00')); // 10,000 → 40.00
  });

  it('increments over any split are never negative and sum to the commission of the whole', () => {
    fc.assert(
      fc.property(arbSchedule, fc.array(fc.tuple(fc.bigInt({ min: 1n, max: 10n ** 10n }), fc.bigInt({ min: 1n, max: 10n ** 7n })), { minLength: 1, maxLength: 10 }), (s, parts) => {
        let qty = 0n;
        let value = 0n;
        let charged = 0n;
        for (const [q, p] of parts) {
          const inc = commissionIncrement(s, qty, value, charged, q, q * p);
          if (inc < 0n) return false;
          qty += q;
          value += q * p;
          charged += inc;
        }
        return charged === commissionForValue(s, qty, value) && commissionIncrement(null, 0n, 0n, 0n, qty, value) === 0n;
      }),
      RUN,
    );
  });
});

describe('parseCommissionSchedule', () => {
  const messageOf = (input: unknown, field?: string): string => {
    try {
      parseCommissionSchedule(input, field);
    } catch (e) {
      expect(e).toBeInstanceOf(ValidationError);
      return (e as Error).message;
    }
    throw new Error(`accepted ${JSON.stringify(input)}`);
  };

  it('reads every field, as strings or numbers; missing fields are zero and no cap', () => {
    expect(parseCommissionSchedule({})).toEqual(NO_COMMISSION);
    expect(parseCommissionSchedule({ per_order: '1.00', per_share: '0.0050', bps: '5', minimum: 1, maximum: '25.5' })).toEqual({
      perOrder: parseCash('1.00'),
      perShare: parsePrice('0.005'),
      bps: 5n,
      minimum: parseCash('1'),
      maximum: parseCash('25.50'),
    });
    expect(parseCommissionSchedule({ maximum: null }).maximum).toBeNull();
    expect(parseCommissionSchedule({ bps: 1000 }).bps).toBe(1000n);
  });

  it('rejects what is not an object, naming the fields', () => {
    for (const bad of [null, undefined, 'free', 5, [], [{ per_order: '1' }]]) {
      expect(messageOf(bad)).toBe('commission must be an object with per_order, per_share, bps, minimum, maximum');
    }
    expect(messageOf(null, 'rules.commission')).toBe('rules.commission must be an object with per_order, per_share, bps, minimum, maximum');
  });

  it('rejects unknown fields rather than charging nothing silently', () => {
    expect(messageOf({ per_order: '1.00', perOrder: '1.00' })).toBe('commission.perOrder is not part of a commission schedule; its fields are per_order, per_share, bps, minimum, maximum');
  });

  it('rejects negative, malformed, over-precise and too-large values with the field named', () => {
    expect(messageOf({ per_order: '-1.00' })).toMatch(/^commission\.per_order must be a plain decimal/);
    expect(messageOf({ minimum: -1 })).toMatch(/^commission\.minimum must be a plain decimal/);
    expect(messageOf({ per_order: '1.001' })).toBe('commission.per_order must have at most 2 decimals');
    expect(messageOf({ per_share: '0.00001' })).toBe('commission.per_share must have at most 4 decimals');
    expect(messageOf({ bps: '1.5' })).toMatch(/^commission\.bps must have at most 0 decimals/);
    expect(messageOf({ bps: 1001 })).toBe('commission.bps must be at most 1000');
    expect(messageOf({ maximum: 'lots' })).toMatch(/^commission\.maximum must be a plain decimal/);
    expect(messageOf({ per_order: true })).toBe('commission.per_order must be a decimal number or a decimal string');
    expect(messageOf({ bps: Number.NaN })).toBe('commission.bps must be a finite number');
  });

  it('rejects a maximum below the minimum', () => {
    expect(messageOf({ minimum: '5.00', maximum: '4.99' })).toBe('commission.maximum must not be below commission.minimum');
    expect(parseCommissionSchedule({ minimum: '5.00', maximum: '5.00' }).maximum).toBe(parseCash('5.00'));
  });
});

describe('commissionScheduleToJson', () => {
  it('renders decimal strings', () => {
    expect(commissionScheduleToJson({ perOrder: parseCash('1'), perShare: parsePrice('0.005'), bps: 5n, minimum: 0n, maximum: null })).toEqual({ per_order: '1.00', per_share: '0.0050', bps: '5', minimum: '0.00', maximum: null });
  });

  it('round-trips through parseCommissionSchedule, also through JSON text (property)', () => {
    fc.assert(
      fc.property(arbSchedule, (s) => {
        const json = commissionScheduleToJson(s);
        expect(parseCommissionSchedule(json)).toEqual(s);
        expect(parseCommissionSchedule(JSON.parse(JSON.stringify(json)))).toEqual(s);
        expect(commissionScheduleToJson(parseCommissionSchedule(json))).toEqual(json);
      }),
      RUN,
    );
  });
});
