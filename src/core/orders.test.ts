import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parsePrice, parseQty, tradeValue } from './money.js';
import { buyReservation, canTransition, executeBuy, executeSell, isTerminal, ORDER_STATUSES } from './orders.js';

const q = (s: string) => parseQty(s);
const p = (s: string) => parsePrice(s);

describe('order state machine', () => {
  it('moves only from PENDING, to a terminal status', () => {
    for (const from of ORDER_STATUSES) {
      for (const to of ORDER_STATUSES) {
        expect(canTransition(from, to)).toBe(from === 'PENDING' && to !== 'PENDING');
      }
    }
    expect(ORDER_STATUSES.filter(isTerminal)).toEqual(['FILLED', 'REJECTED', 'CANCELED']);
  });
});

describe('engine decisions', () => {
  it('follows the seed: reserve 1575.00 at 150, fill 1520.00 at 152', () => {
    const reserved = buyReservation(q('10'), p('150'), 500n);
    expect(reserved).toBe(157500n);
    expect(executeBuy(q('10'), p('152'), reserved)).toEqual({ outcome: 'fill', price: p('152'), amount: 152000n });
    expect(executeSell(q('5'), p('152'))).toEqual({ outcome: 'fill', price: p('152'), amount: 76000n });
  });

  it('rejects a buy whose cost exceeds the reservation', () => {
    const reserved = buyReservation(q('10'), p('150'), 500n);
    expect(executeBuy(q('10'), p('157.5000'), reserved).outcome).toBe('fill');
    expect(executeBuy(q('10'), p('157.5010'), reserved)).toEqual({ outcome: 'reject', reason: 'PRICE_MOVED_BEYOND_RESERVATION' });
  });

  it('always fills a buy at the quoted price itself (property)', () => {
    fc.assert(
      fc.property(fc.bigInt(1n, 10n ** 12n), fc.bigInt(1n, 10n ** 9n), fc.bigInt(0n, 2000n), (qty, price, bps) => {
        const exec = executeBuy(qty, price, buyReservation(qty, price, bps));
        expect(exec).toEqual({ outcome: 'fill', price, amount: tradeValue(qty, price) });
      }),
    );
  });
});
