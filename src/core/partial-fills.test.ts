import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buyCost, parseCash, parsePrice, parseQty } from './money.js';
import { averageFillPrice, executePartialBuy, splitHold } from './partial-fills.js';

describe('splitHold', () => {
  it('keeps the remainder’s share rounded up and gives the execution the rest', () => {
    // 1000.00 held for 3 shares, 1 executes: 666.666… stays → 666.67; 333.33 for the execution.
    expect(splitHold(parseCash('1000.00'), parseQty('3'), parseQty('1'))).toEqual({ forExecution: parseCash('333.33'), keep: parseCash('666.67') });
    expect(splitHold(parseCash('1000.00'), parseQty('3'), parseQty('3'))).toEqual({ forExecution: parseCash('1000.00'), keep: 0n });
  });

  it('conserves the hold over any sequence of executions (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 14n }), fc.array(fc.bigInt({ min: 1n, max: 10n ** 9n }), { minLength: 1, maxLength: 20 }), (reserved, parts) => {
        let remaining = parts.reduce((a, b) => a + b, 0n);
        let held = reserved;
        let spent = 0n;
        for (const part of parts) {
          const { forExecution, keep } = splitHold(held, remaining, part);
          if (forExecution + keep !== held || forExecution < 0n || keep < 0n) return false;
          spent += forExecution;
          held = keep;
          remaining -= part;
        }
        return held === 0n && spent === reserved;
      }),
    );
  });
});

describe('executePartialBuy', () => {
  it('fills when the cost fits in its part of the hold and returns what it did not spend', () => {
    // 10 at 100 held with a 5 % buffer: 1050.00. 4 execute at 101: cost 404.00 of 420.00.
    expect(executePartialBuy(parseCash('1050.00'), parseQty('10'), parseQty('4'), parsePrice('101'))).toEqual({
      outcome: 'fill',
      cost: parseCash('404.00'),
      released: parseCash('16.00'),
      keep: parseCash('630.00'),
    });
    // At 106 the 4 would cost 424.00 > 420.00: refused, as a whole order past its hold is.
    expect(executePartialBuy(parseCash('1050.00'), parseQty('10'), parseQty('4'), parsePrice('106'))).toEqual({ outcome: 'reject' });
  });

  it('a fill never spends more than its part, and cost + released + keep is the hold (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 10n ** 9n }), fc.bigInt({ min: 1n, max: 10n ** 9n }), fc.bigInt({ min: 1n, max: 10n ** 8n }), fc.bigInt({ min: 0n, max: 10n ** 14n }), (a, b, price, reserved) => {
        const [executed, remaining] = a <= b ? [a, b] : [b, a];
        const r = executePartialBuy(reserved, remaining, executed, price);
        if (r.outcome === 'reject') return buyCost(executed, price) > splitHold(reserved, remaining, executed).forExecution;
        return r.cost + r.released + r.keep === reserved && r.released >= 0n;
      }),
    );
  });
});

describe('averageFillPrice', () => {
  it('weights each execution by its quantity', () => {
    expect(averageFillPrice(0n, 0n, parseQty('10'), parsePrice('100'))).toBe(parsePrice('100'));
    expect(averageFillPrice(parseQty('10'), parsePrice('100'), parseQty('30'), parsePrice('104'))).toBe(parsePrice('103'));
    expect(averageFillPrice(parseQty('1'), parsePrice('100'), parseQty('2'), parsePrice('100.0001'))).toBe(parsePrice('100.0001'));
  });
});
