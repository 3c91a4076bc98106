import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { buyCost, parseCash, parsePrice, parseQty } from './money.js';
import { buyReservation, canTransition, executeBuy, executeSell, isTerminal, meetsMinimumNotional, ORDER_STATUSES } from './orders.js';

const q = (s: string) => parseQty(s);
const p = (s: string) => parsePrice(s);

describe('order state machine', () => {
  it('moves PENDING to OPEN or a terminal status, OPEN to a terminal one (REPLACED only from OPEN), and never back', () => {
    const allowed = new Set([
      'PENDING>OPEN', 'PENDING>FILLED', 'PENDING>REJECTED', 'PENDING>CANCELED', 'PENDING>EXPIRED',
      'OPEN>FILLED', 'OPEN>REJECTED', 'OPEN>CANCELED', 'OPEN>EXPIRED', 'OPEN>REPLACED',
    ]);
    for (const from of ORDER_STATUSES) {
      for (const to of ORDER_STATUSES) expect(canTransition(from, to), `${from}>${to}`).toBe(allowed.has(`${from}>${to}`));
    }
    expect(ORDER_STATUSES.filter(isTerminal)).toEqual(['FILLED', 'CANCELED', 'EXPIRED', 'REJECTED', 'REPLACED']);
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
        expect(exec).toEqual({ outcome: 'fill', price, amount: buyCost(qty, price) });
      }),
    );
  });
});

describe('value from nothing', () => {
  it('never fills a buy of shares for 0.00 and rejects a sell whose proceeds round to 0.00', () => {
    // The twelve-orders exploit: 0.000005 COST at 898 used to fill for 0.00 each time.
    const exec = executeBuy(q('0.000005'), p('898'), buyReservation(q('0.000005'), p('898'), 500n));
    expect(exec).toEqual({ outcome: 'fill', price: p('898'), amount: 1n });
    expect(executeSell(q('0.000005'), p('898'))).toEqual({ outcome: 'reject', reason: 'VALUE_ROUNDS_TO_ZERO' });
  });

  it('refuses an order under the minimum notional at the quote, exactly', () => {
    const min = parseCash('1.00');
    expect(meetsMinimumNotional({ side: 'buy', quantity: q('0.000005') }, p('898'), min, undefined)).toBe(false);
    expect(meetsMinimumNotional({ side: 'buy', quantity: q('0.001113') }, p('898'), min, undefined)).toBe(false);
    expect(meetsMinimumNotional({ side: 'buy', quantity: q('0.001114') }, p('898'), min, undefined)).toBe(true);
    expect(meetsMinimumNotional({ side: 'sell', quantity: q('0.0005') }, p('898'), min, q('0.0006'))).toBe(false);
  });

  it('lets a sell of a whole small position through, unless it would be worth 0.00', () => {
    const min = parseCash('1.00');
    expect(meetsMinimumNotional({ side: 'sell', quantity: q('0.0005') }, p('898'), min, q('0.0005'))).toBe(true);
    expect(meetsMinimumNotional({ side: 'sell', quantity: q('0.000005') }, p('898'), min, q('0.000005'))).toBe(false);
    expect(meetsMinimumNotional({ side: 'buy', quantity: q('0.0005') }, p('898'), min, q('0.0005'))).toBe(false);
  });

  it('accepts exactly what the minimum allows, for any price (property)', () => {
    fc.assert(
      fc.property(fc.bigInt(1n, 10n ** 12n), fc.bigInt(1n, 10n ** 9n), fc.bigInt(1n, 10n ** 6n), (qty, price, min) => {
        const ok = meetsMinimumNotional({ side: 'buy', quantity: qty }, price, min, undefined);
        expect(ok).toBe(qty * price >= min * 10n ** 8n);
        if (ok) expect(buyCost(qty, price) >= min).toBe(true);
      }),
    );
  });
});
