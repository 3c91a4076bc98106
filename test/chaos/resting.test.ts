/**
 * The chaos suite's oracle for resting orders (resting.ts firstDemand): which recorded tick must
 * have made an order executable. It only ever asks for what the order's terms imply from ticks
 * quoted after its creation; these cases pin that down without any process running.
 */
import { describe, expect, it } from 'vitest';
import { parsePrice } from '../../src/core/money.js';
import { firstDemand, TICK_AFTER_CREATION_MARGIN_MS, type RecordedTick, type RestingRow } from './resting.js';

const T0 = 1_800_000_000_000;

function order(over: Partial<RestingRow>): RestingRow {
  return {
    id: 'o',
    user_id: 'u',
    ticker: 'AAPL',
    side: 'buy',
    type: 'limit',
    time_in_force: 'gtc',
    limit_price: null,
    stop_price: null,
    trail_price: null,
    trail_percent: null,
    status: 'OPEN',
    reject_reason: null,
    cancel_reason: null,
    fill_price: null,
    created_ms: String(T0),
    ended_ms: null,
    replaces: null,
    ...over,
  };
}

/** Ticks 1 s apart from T0 + 1 s, at these prices. */
function ticks(...prices: string[]): RecordedTick[] {
  return prices.map((p, i) => ({ entry: `${T0 + 1_000 * (i + 1)}-0`, asOfMs: T0 + 1_000 * (i + 1), price: parsePrice(p), admin: false }));
}

const at = (t: RecordedTick | undefined) => (t === undefined ? undefined : (t.asOfMs - T0) / 1_000);

describe('firstDemand', () => {
  it('a limit: the first tick at or through it, on its side', () => {
    expect(at(firstDemand(order({ side: 'buy', limit_price: '99.0000' }), ticks('100', '99.5', '99', '98')))).toBe(3);
    expect(at(firstDemand(order({ side: 'sell', limit_price: '101.0000' }), ticks('100', '100.99', '101.5')))).toBe(3);
    expect(firstDemand(order({ side: 'buy', limit_price: '99.0000' }), ticks('100', '101', '99.01'))).toBeUndefined();
  });

  it('ignores ticks quoted before the order was created (within the margin too)', () => {
    const early: RecordedTick[] = [
      { entry: 'a', asOfMs: T0 - 1_000, price: parsePrice('90'), admin: true },
      { entry: 'b', asOfMs: T0 + TICK_AFTER_CREATION_MARGIN_MS - 1, price: parsePrice('90'), admin: true },
    ];
    expect(firstDemand(order({ limit_price: '99.0000' }), early)).toBeUndefined();
  });

  it('a stop: the first tick at or beyond it, toward the market move it guards', () => {
    expect(at(firstDemand(order({ type: 'stop', side: 'buy', stop_price: '101.0000' }), ticks('100', '101')))).toBe(2);
    expect(at(firstDemand(order({ type: 'stop', side: 'sell', stop_price: '99.0000' }), ticks('100', '99.5', '98')))).toBe(3);
  });

  it('a stop_limit: triggered by one tick, executable at a later one that reaches its limit', () => {
    // Buy stop 101 limit 101.5: 103 triggers but overshoots the limit; 101.2 then executes it.
    const o = order({ type: 'stop_limit', side: 'buy', stop_price: '101.0000', limit_price: '101.5000' });
    expect(at(firstDemand(o, ticks('100', '103', '101.2')))).toBe(3);
    // Never triggered: a tick inside the limit is not enough.
    expect(firstDemand(o, ticks('100', '100.5', '100.9'))).toBeUndefined();
    expect(at(firstDemand(o, ticks('100', '101.3')))).toBe(2);
  });

  it('a trailing stop: only beyond the level the best earlier recorded price gives', () => {
    // Sell trailing 2.00 below the high: high 105 (tick 2), level >= 103; 103 is executable.
    const sell = order({ type: 'trailing_stop', side: 'sell', trail_price: '2.0000' });
    expect(at(firstDemand(sell, ticks('100', '105', '104', '103')))).toBe(4);
    expect(firstDemand(sell, ticks('100', '105', '103.01'))).toBeUndefined();
    // Buy trailing 1 % above the low: low 100, level <= 101; 101 is executable.
    const buy = order({ type: 'trailing_stop', side: 'buy', trail_percent: '1.00' });
    expect(at(firstDemand(buy, ticks('102', '100', '100.5', '101')))).toBe(4);
    // The first recorded tick is never a demand (the true extreme may be the decision-time quote).
    expect(firstDemand(buy, ticks('200'))).toBeUndefined();
  });
});
