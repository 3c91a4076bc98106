import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ValidationError } from './errors.js';
import { buyCost, parsePrice, parseQty } from './money.js';
import {
  holdFor,
  initialState,
  onTick,
  parseTerms,
  trailingLevel,
  type OrderTerms,
  type RawTerms,
  type RestingState,
} from './order-terms.js';
import { decideOnArrival, decideOnSession, fillAt } from './orders.js';

const p = (s: string) => parsePrice(s);
const q = (s: string) => parseQty(s);
const terms = (side: 'buy' | 'sell', raw: RawTerms, quantity = '10') => parseTerms(side, q(quantity), raw);
const refusal = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return { field: (err as ValidationError).details?.field, message: (err as Error).message };
  }
  throw new Error('accepted');
};
const limits = { priceAgeMsMax: 5_000, priceWaitMsMax: 60_000 };
const NOW = 1_800_000_000_000;

describe('order terms', () => {
  it('takes exactly the fields of each type and names the one at fault', () => {
    expect(terms('buy', { type: 'limit', limit_price: '140' })).toMatchObject({ type: 'limit', timeInForce: 'day', limitPrice: p('140') });
    expect(refusal(() => terms('buy', { type: 'limit' }))).toEqual({ field: 'limit_price', message: 'limit_price is required for a limit order' });
    expect(refusal(() => terms('buy', { type: 'market', limit_price: '1' })).field).toBe('limit_price');
    expect(refusal(() => terms('buy', { type: 'stop', limit_price: '1', stop_price: '2' })).field).toBe('limit_price');
    expect(refusal(() => terms('buy', { type: 'stop_limit', limit_price: '1' })).field).toBe('stop_price');
    expect(refusal(() => terms('buy', { type: 'limit', limit_price: '0' })).field).toBe('limit_price');
    expect(refusal(() => terms('sell', { type: 'trailing_stop' })).message).toContain('exactly one of trail_price and trail_percent');
    expect(refusal(() => terms('sell', { type: 'trailing_stop', trail_price: '1', trail_percent: '5' })).message).toContain('exactly one');
    expect(refusal(() => terms('sell', { type: 'trailing_stop', trail_percent: '100' })).field).toBe('trail_percent');
    expect(refusal(() => terms('sell', { type: 'trailing_stop', trail_percent: '5.001' })).field).toBe('trail_percent');
    expect(terms('sell', { type: 'trailing_stop', trail_percent: '5' }).trailPercent).toBe(500n);
    expect(refusal(() => terms('buy', { type: 'stop', stop_price: '1', time_in_force: 'opg' })).field).toBe('time_in_force');
    expect(refusal(() => terms('buy', { type: 'market', time_in_force: 'week' })).field).toBe('time_in_force');
    expect(refusal(() => terms('buy', { type: 'iceberg' })).field).toBe('type');
  });

  it('holds per type, rounded up to the cent', () => {
    const quote = p('150');
    expect(holdFor(terms('buy', { type: 'market' }), quote, 500n)).toBe(157_500n);
    expect(holdFor(terms('buy', { type: 'limit', limit_price: '140.0001' }), quote, 500n)).toBe(140_001n); // 1400.001 -> 1400.01
    expect(holdFor(terms('buy', { type: 'stop_limit', stop_price: '160', limit_price: '161' }), quote, 500n)).toBe(161_000n);
    expect(holdFor(terms('buy', { type: 'stop', stop_price: '160' }), quote, 500n)).toBe(168_000n);
    // A buy stop already below the market executes at about the quote: it holds for the quote.
    expect(holdFor(terms('buy', { type: 'stop', stop_price: '50' }), quote, 500n)).toBe(157_500n);
    expect(holdFor(terms('buy', { type: 'trailing_stop', trail_price: '5' }), quote, 500n)).toBe(162_750n);
    expect(holdFor(terms('buy', { type: 'trailing_stop', trail_percent: '10' }), quote, 500n)).toBe(173_250n);
    expect(holdFor(terms('sell', { type: 'limit', limit_price: '1' }), quote, 500n)).toBe(0n);
  });
});

describe('triggers and fill prices', () => {
  const rest = initialState(terms('buy', { type: 'limit', limit_price: '1' }), undefined);

  it('fills a buy limit at or below its limit, at the tick price (a gap fills at the gap)', () => {
    const t = terms('buy', { type: 'limit', limit_price: '140' });
    expect(onTick(t, rest, p('140.0001'))).toEqual({ kind: 'rest', state: rest });
    expect(onTick(t, rest, p('140'))).toEqual({ kind: 'execute', price: p('140'), triggered: false });
    expect(onTick(t, rest, p('139.5'))).toEqual({ kind: 'execute', price: p('139.5'), triggered: false });
    const s = terms('sell', { type: 'limit', limit_price: '160' });
    expect(onTick(s, rest, p('159.9999')).kind).toBe('rest');
    expect(onTick(s, rest, p('162'))).toEqual({ kind: 'execute', price: p('162'), triggered: false });
  });

  it('triggers stops at or beyond their price and then executes as market (stop) or limit (stop_limit)', () => {
    const buyStop = terms('buy', { type: 'stop', stop_price: '150' });
    expect(onTick(buyStop, rest, p('149.9999')).kind).toBe('rest');
    expect(onTick(buyStop, rest, p('151'))).toEqual({ kind: 'execute', price: p('151'), triggered: true });
    const sellStop = terms('sell', { type: 'stop', stop_price: '100' });
    expect(onTick(sellStop, rest, p('95'))).toEqual({ kind: 'execute', price: p('95'), triggered: true });
    const sl = terms('sell', { type: 'stop_limit', stop_price: '100', limit_price: '99' });
    // Gaps below the limit: triggered, not executable, rests as a limit.
    const gapped = onTick(sl, rest, p('98'));
    expect(gapped).toEqual({ kind: 'rest', state: { ...rest, triggered: true } });
    if (gapped.kind !== 'rest') throw new Error('rests');
    // Later the price comes back to the limit: executes, although above the stop.
    expect(onTick(sl, gapped.state, p('99.5'))).toEqual({ kind: 'execute', price: p('99.5'), triggered: true });
    expect(onTick(sl, rest, p('99.5'))).toEqual({ kind: 'execute', price: p('99.5'), triggered: true });
  });

  it('moves a trailing sell up with the market and triggers at its level: 5% over 100 -> 110 -> 104.50', () => {
    const t = terms('sell', { type: 'trailing_stop', trail_percent: '5' });
    let state: RestingState = initialState(t, p('100'));
    expect([state.extreme, state.stopLevel]).toEqual([p('100'), p('95')]);
    const path = ['110', '107', '104.5001'];
    for (const price of path) {
      const o = onTick(t, state, p(price));
      if (o.kind !== 'rest') throw new Error(`triggered at ${price}`);
      state = o.state;
    }
    expect([state.extreme, state.stopLevel]).toEqual([p('110'), p('104.5')]);
    expect(onTick(t, state, p('104.5'))).toEqual({ kind: 'execute', price: p('104.5'), triggered: true });
  });

  it('mirrors a trailing buy with the low, and rounds levels toward the market', () => {
    const t = terms('buy', { type: 'trailing_stop', trail_price: '2' });
    let state = initialState(t, p('50'));
    const down = onTick(t, state, p('45'));
    if (down.kind !== 'rest') throw new Error('rests');
    state = down.state;
    expect([state.extreme, state.stopLevel]).toEqual([p('45'), p('47')]);
    expect(onTick(t, state, p('47'))).toEqual({ kind: 'execute', price: p('47'), triggered: true });
    // 3% of 33.3333: a sell's level 32.333301 rounds up to 32.3334, a buy's 34.333299 down to 34.3332.
    expect(trailingLevel('sell', p('33.3333'), { trailPrice: null, trailPercent: 300n })).toBe(p('32.3334'));
    expect(trailingLevel('buy', p('33.3333'), { trailPrice: null, trailPercent: 300n })).toBe(p('34.3332'));
  });

  const price = fc.bigInt(1n, 10_000_0000n);
  const path = fc.array(price, { minLength: 1, maxLength: 40 });

  it('never fills a buy limit above its limit, nor a sell limit below (property)', () => {
    fc.assert(
      fc.property(price, path, fc.boolean(), (limit, ticks, buy) => {
        const t: OrderTerms = { ...terms(buy ? 'buy' : 'sell', { type: 'limit', limit_price: '1' }), limitPrice: limit };
        for (const tick of ticks) {
          const o = onTick(t, rest, tick);
          if (o.kind === 'execute') return buy ? o.price <= limit : o.price >= limit;
        }
        return true;
      }),
    );
  });

  it("never lowers a trailing sell's level, and triggers only at or below it (property)", () => {
    fc.assert(
      fc.property(price, path, fc.integer({ min: 1, max: 9_999 }), (start, ticks, pct) => {
        const t: OrderTerms = { ...terms('sell', { type: 'trailing_stop', trail_percent: '5' }), trailPercent: BigInt(pct) };
        let state = initialState(t, start);
        for (const tick of ticks) {
          const o = onTick(t, state, tick);
          if (o.kind === 'execute') return tick <= trailingLevel('sell', state.extreme! > tick ? state.extreme! : tick, t);
          if (o.state.stopLevel! < state.stopLevel!) return false;
          state = o.state;
        }
        return true;
      }),
    );
  });
});

describe('decisions', () => {
  const order = (t: OrderTerms, reserved: bigint) => ({ terms: t, reservedAmount: reserved, createdAtMs: NOW - 1_000 });
  const quote = (s: string) => ({ price: p(s), asOfMs: NOW });

  it('executes a marketable limit at once and rests one that is not', () => {
    const t = terms('buy', { type: 'limit', limit_price: '140' });
    const hold = holdFor(t, p('150'), 500n);
    expect(decideOnArrival(order(t, hold), quote('150'), NOW, true, limits)).toEqual({ kind: 'rest', state: initialState(t, undefined) });
    expect(decideOnArrival(order(t, hold), quote('139'), NOW, true, limits)).toEqual({ kind: 'fill', price: p('139'), amount: buyCost(q('10'), p('139')), triggered: false });
  });

  it('cancels ioc and fok that are not marketable, or placed while closed', () => {
    for (const tif of ['ioc', 'fok']) {
      const t = terms('buy', { type: 'limit', limit_price: '140', time_in_force: tif });
      expect(decideOnArrival(order(t, 140_000n), quote('150'), NOW, true, limits)).toEqual({ kind: 'cancel', reason: 'NOT_MARKETABLE' });
      expect(decideOnArrival(order(t, 140_000n), quote('139'), NOW, true, limits).kind).toBe('fill');
      expect(decideOnArrival(order(t, 140_000n), quote('139'), NOW, false, limits)).toEqual({ kind: 'cancel', reason: 'MARKET_CLOSED' });
    }
  });

  it('rests market orders while closed and opg/cls until their session, and waits for a price only when it must', () => {
    const market = terms('buy', { type: 'market' });
    expect(decideOnArrival(order(market, 157_500n), quote('150'), NOW, false, limits).kind).toBe('rest');
    expect(decideOnArrival(order(market, 157_500n), undefined, NOW, true, limits)).toEqual({ kind: 'wait' });
    expect(decideOnArrival({ ...order(market, 157_500n), createdAtMs: NOW - 61_000 }, undefined, NOW, true, limits)).toEqual({ kind: 'reject', reason: 'PRICE_UNAVAILABLE' });
    expect(decideOnArrival(order(terms('buy', { type: 'market', time_in_force: 'opg' }), 157_500n), quote('150'), NOW, true, limits).kind).toBe('rest');
    expect(decideOnArrival(order(terms('buy', { type: 'limit', limit_price: '1' }), 1_000n), undefined, NOW, true, limits).kind).toBe('rest');
  });

  it('applies the final check to every buy: a stop whose trigger price gapped past its hold is rejected', () => {
    const t = terms('buy', { type: 'stop', stop_price: '100' });
    const hold = holdFor(t, p('90'), 500n); // 10 x 100 x 1.05 = 1050.00
    expect(decideOnArrival(order(t, hold), quote('106'), NOW, true, limits)).toEqual({ kind: 'reject', reason: 'PRICE_MOVED_BEYOND_RESERVATION', triggered: true });
    expect(fillAt({ side: 'buy', quantity: q('10'), reservedAmount: hold }, p('105'), true).kind).toBe('fill');
  });

  it('executes opg at the open and cls at the close (or cancels them), and expires day orders at the close', () => {
    const state = initialState(terms('buy', { type: 'market' }), undefined);
    const opg = terms('buy', { type: 'limit', limit_price: '140', time_in_force: 'opg' });
    expect(decideOnSession({ ...order(opg, 140_000n), state }, 'open', p('139'))).toMatchObject({ kind: 'fill', price: p('139') });
    expect(decideOnSession({ ...order(opg, 140_000n), state }, 'open', p('141'))).toEqual({ kind: 'cancel', reason: 'NOT_FILLED_AT_SESSION' });
    const cls = terms('sell', { type: 'market', time_in_force: 'cls' });
    expect(decideOnSession({ ...order(cls, 0n), state }, 'close', p('150'))).toMatchObject({ kind: 'fill', price: p('150') });
    expect(decideOnSession({ ...order(cls, 0n), state }, 'open', p('150'))).toBeUndefined();
    const day = terms('buy', { type: 'limit', limit_price: '1' });
    expect(decideOnSession({ ...order(day, 1_000n), state }, 'close', p('150'))).toEqual({ kind: 'expire' });
    const gtc = terms('buy', { type: 'limit', limit_price: '1', time_in_force: 'gtc' });
    expect(decideOnSession({ ...order(gtc, 1_000n), state }, 'close', p('150'))).toBeUndefined();
    const waitingMarket = terms('buy', { type: 'market' });
    expect(decideOnSession({ ...order(waitingMarket, 157_500n), state }, 'open', p('150'))).toMatchObject({ kind: 'fill', price: p('150') });
  });

  it('without a fresh price at the session: opg and cls miss it (canceled), a waiting market order is rejected', () => {
    const state = initialState(terms('buy', { type: 'market' }), undefined);
    const opg = terms('buy', { type: 'market', time_in_force: 'opg' });
    expect(decideOnSession({ ...order(opg, 157_500n), state }, 'open', undefined)).toEqual({ kind: 'cancel', reason: 'NOT_FILLED_AT_SESSION' });
    const cls = terms('sell', { type: 'limit', limit_price: '150', time_in_force: 'cls' });
    expect(decideOnSession({ ...order(cls, 0n), state }, 'close', undefined)).toEqual({ kind: 'cancel', reason: 'NOT_FILLED_AT_SESSION' });
    const waitingMarket = terms('buy', { type: 'market' });
    expect(decideOnSession({ ...order(waitingMarket, 157_500n), state }, 'open', undefined)).toEqual({ kind: 'reject', reason: 'PRICE_UNAVAILABLE' });
    // A day market order still waiting at a close (an open the engine missed) expires with the day.
    expect(decideOnSession({ ...order(waitingMarket, 157_500n), state }, 'close', undefined)).toEqual({ kind: 'expire' });
  });
});

describe('a replacement carries its state over', () => {
  it("keeps a trailing stop's best price (its level follows from the new trail) and a stop_limit's trigger", () => {
    const trailing = terms('buy', { type: 'trailing_stop', trail_price: '10' });
    // The replaced order had seen a low of 280; the market is 285 now.
    expect(initialState(trailing, p('285'), { extreme: p('280'), triggered: false })).toEqual({ triggered: false, extreme: p('280'), stopLevel: p('290') });
    // A lower price now is the new low.
    expect(initialState(trailing, p('275'), { extreme: p('280'), triggered: false })).toEqual({ triggered: false, extreme: p('275'), stopLevel: p('285') });
    expect(initialState(trailing, undefined, { extreme: p('280'), triggered: false }).extreme).toBe(p('280'));
    const stopLimit = terms('buy', { type: 'stop_limit', stop_price: '105', limit_price: '100' });
    expect(initialState(stopLimit, p('103'), { extreme: null, triggered: true }).triggered).toBe(true);
    // Triggered, it fills at 99 like the order it replaced would have.
    const order = { terms: stopLimit, reservedAmount: holdFor(stopLimit, p('103'), 500n), createdAtMs: NOW - 1_000, prior: { extreme: null, triggered: true } };
    expect(decideOnArrival(order, { price: p('99'), asOfMs: NOW }, NOW, true, limits)).toMatchObject({ kind: 'fill', price: p('99') });
    expect(decideOnArrival({ ...order, prior: undefined }, { price: p('99'), asOfMs: NOW }, NOW, true, limits).kind).toBe('rest');
  });
});
