import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { commissionForValue, NO_COMMISSION, type CommissionSchedule } from './commissions.js';
import { EXECUTION_REFUSALS, planExecution, type ExecutableOrder, type ExecutionPlan, type ExecutionQuote, type ModelSettings } from './executions.js';
import { FILL_MODEL_VERSION, type FillModelName, type RealisticParams } from './fill-models.js';
import { TIER_PARAMS } from './liquidity.js';
import { buyCost, parseCash, parseDecimal, parsePrice, QTY_MAX, QTY_SCALE, reservationFor, sellProceeds, type Cash, type Price, type Qty } from './money.js';

type Fill = Extract<ExecutionPlan, { kind: 'fill' }>;

/** A quantity; a displayed size may be zero. */
const parseQty = (text: string, field = 'quantity', allowZero = false): Qty => parseDecimal(text, { scale: QTY_SCALE, max: QTY_MAX, field, allowZero });

const MID: RealisticParams = { impactCoefficientBps: TIER_PARAMS.mid.impactCoefficientBps, dailyVolume: TIER_PARAMS.mid.dailyVolume };
const settings = (model: FillModelName, params: RealisticParams = MID): ModelSettings => ({ model, params });
const T0 = 1_780_000_000_000;

const q = (last: string, bid: string, ask: string, size: string, asOfMs = T0, bidSize = size): ExecutionQuote => ({
  last: parsePrice(last),
  bid: parsePrice(bid),
  ask: parsePrice(ask),
  bidSize: parseQty(bidSize, 'bid_size', true),
  askSize: parseQty(size, 'ask_size', true),
  asOfMs,
});

const order = (o: Partial<ExecutableOrder> & Pick<ExecutableOrder, 'quantity'>): ExecutableOrder => ({
  side: 'buy',
  timeInForce: 'day',
  filledQuantity: 0n,
  filledValue: 0n,
  reservedAmount: 0n,
  commissionCharged: 0n,
  commissionSchedule: null,
  limitPrice: null,
  ...o,
});

function fill(plan: ExecutionPlan): Fill {
  if (plan.kind !== 'fill') throw new Error(`expected a fill, got ${JSON.stringify(plan)}`);
  return plan;
}

/** The order's state after a fill, as the engine stores it: the next call's input. */
function after(o: ExecutableOrder, f: Fill): ExecutableOrder {
  return {
    ...o,
    filledQuantity: o.filledQuantity + f.quantity,
    filledValue: o.filledValue + f.value,
    reservedAmount: f.reservedAfter,
    commissionCharged: o.commissionCharged + f.commission,
  };
}

/** Runs `o` along a quote path, feeding each fill back in; stops when complete, on a refusal or at the end. */
function run(o: ExecutableOrder, s: ModelSettings, path: readonly ExecutionQuote[], nowMs = (x: ExecutionQuote) => x.asOfMs + 25) {
  const plans: ExecutionPlan[] = [];
  const states: ExecutableOrder[] = [o];
  let state = o;
  for (const quote of path) {
    const plan = planExecution(state, s, quote, nowMs(quote));
    plans.push(plan);
    if (plan.kind === 'refuse') break;
    if (plan.kind === 'fill') {
      state = after(state, plan);
      states.push(state);
      if (plan.complete) break;
    }
  }
  const fills = plans.filter((p): p is Fill => p.kind === 'fill');
  return { plans, fills, states, final: state };
}

/** Σ value / Σ quantity rounded half-up to the price scale, written out independently. */
function weightedAverage(parts: readonly { quantity: Qty; price: Price }[]): Price {
  let num = 0n;
  let den = 0n;
  for (const p of parts) {
    num += p.quantity * p.price;
    den += p.quantity;
  }
  return (2n * num + den) / (2n * den);
}

const sumOf = (xs: readonly bigint[]) => xs.reduce((a, b) => a + b, 0n);

/** The conservation of the hold, as the code defines it (splitHold: forExecution + keep = reserved). */
function assertHoldConserved(initial: Cash, fills: readonly Fill[], states: readonly ExecutableOrder[]) {
  // Each execution splits the hold it meets into what it releases and what it keeps.
  fills.forEach((f, i) => expect(f.heldReleased + f.reservedAfter).toBe(states[i]!.reservedAmount));
  // What it releases pays its cost (a buy) and its commission; the rest goes back to available cash.
  const returned = fills.map((f) => f.heldReleased - f.amount - f.commission);
  returned.forEach((r) => expect(r).toBeGreaterThanOrEqual(0n));
  const last = fills[fills.length - 1]!;
  // Nothing created or destroyed: initial hold = Σ(amount + commission) + Σ returned + what is still held.
  expect(sumOf(fills.map((f) => f.amount + f.commission)) + sumOf(returned) + last.reservedAfter).toBe(initial);
  expect(sumOf(fills.map((f) => f.heldReleased)) + last.reservedAfter).toBe(initial);
}

describe('planExecution: a 50,000-share realistic buy of a mid-tier instrument', () => {
  // Displayed ask 10,000 each quote, the ask rising 50.03 → 50.12.
  const path = [
    q('50.0000', '49.9700', '50.0300', '10000', T0),
    q('50.0200', '49.9900', '50.0500', '10000', T0 + 1_000),
    q('50.0500', '50.0200', '50.0800', '10000', T0 + 2_000),
    q('50.0700', '50.0400', '50.1000', '10000', T0 + 3_000),
    q('50.0900', '50.0600', '50.1200', '10000', T0 + 4_000),
  ];
  const quantity = parseQty('50000');
  // $0.0035 a share, at least $1.00, at most $150.00.
  const schedule: CommissionSchedule = { perOrder: 0n, perShare: parsePrice('0.0035'), bps: 0n, minimum: parseCash('1.00'), maximum: parseCash('150.00') };
  // Held at acceptance: the value at 50.00 with a 2 % buffer, plus the most commission it can charge.
  const reserved = reservationFor(quantity, parsePrice('50'), 200n) + parseCash('150.00');
  const start = order({ quantity, reservedAmount: reserved, commissionSchedule: schedule });
  const { fills, states, final } = run(start, settings('realistic'), path);

  it('fills in five parts of the displayed size, at rising prices, the last one completing it', () => {
    expect(reserved).toBe(parseCash('2550150.00'));
    expect(fills.map((f) => f.quantity)).toEqual(Array(5).fill(parseQty('10000')));
    expect(sumOf(fills.map((f) => f.quantity))).toBe(quantity);
    // ask × (1 + impact of the cumulative quantity) rounded up: 30, 42.42, 51.96, 60, 67.08 bps.
    expect(fills.map((f) => f.price)).toEqual(['50.1801', '50.2624', '50.3403', '50.4006', '50.4563'].map((p) => parsePrice(p)));
    expect(fills.map((f) => f.explanation.slippageCentiBps)).toEqual([3000n, 4242n, 5196n, 6000n, 6708n]);
    for (let i = 1; i < fills.length; i++) expect(fills[i]!.price).toBeGreaterThan(fills[i - 1]!.price);
    fills.forEach((f, i) => expect(f.price).toBeGreaterThanOrEqual(path[i]!.ask));
    expect(fills.map((f) => f.complete)).toEqual([false, false, false, false, true]);
    expect(final.filledQuantity).toBe(quantity);
    expect(final.reservedAmount).toBe(0n);
  });

  it('each part’s value is quantity × price exactly and its amount the value so far rounded up less what earlier parts paid', () => {
    let value = 0n;
    for (const f of fills) {
      expect(f.value).toBe(f.quantity * f.price);
      expect(f.amount).toBe(buyCost(1n, value + f.value) - buyCost(1n, value));
      value += f.value;
    }
    expect(fills[0]!.amount).toBe(parseCash('501801.00'));
  });

  it('splits a fractional order into parts whose amounts add up to its whole value rounded up once', () => {
    // 3 × 1/3 share at 10.0001: each part alone would round 3.33336… up to 3.34 (10.02 in all);
    // in the cumulative rounding the parts pay 3.34, 3.33 and 3.34: 10.01, the whole order's cost.
    const third = parseQty('0.333333');
    const o = order({ quantity: third * 3n, reservedAmount: reservationFor(third * 3n, parsePrice('10.0001'), 0n), limitPrice: parsePrice('10.0001') });
    expect(o.reservedAmount).toBe(parseCash('10.01'));
    const path = [0, 1, 2].map((i) => q('10.0001', '10.0001', '10.0001', '0.333333', T0 + i));
    const { fills, plans } = run(o, settings('realistic', { impactCoefficientBps: 0n, dailyVolume: MID.dailyVolume }), path);
    expect(plans.map((p) => p.kind)).toEqual(['fill', 'fill', 'fill']);
    const total = fills.reduce((sum, f) => sum + f.amount, 0n);
    expect(total).toBe(buyCost(third * 3n, parsePrice('10.0001')));
    expect(fills.map((f) => f.amount)).toEqual([parseCash('3.34'), parseCash('3.33'), parseCash('3.34')]);
  });

  it('a limit buy held at exactly quantity × limit fills every part priced at the limit (no cent lost to rounding)', () => {
    const limit = parsePrice('10.005');
    const two = parseQty('2');
    const o = order({ quantity: two, reservedAmount: reservationFor(two, limit, 0n), limitPrice: limit });
    expect(o.reservedAmount).toBe(parseCash('20.01'));
    const path = [q('10.005', '10.005', '10.005', '1', T0), q('10.005', '10.005', '10.005', '1', T0 + 1)];
    const { fills, plans } = run(o, settings('realistic', { impactCoefficientBps: 0n, dailyVolume: MID.dailyVolume }), path);
    expect(plans.map((p) => p.kind)).toEqual(['fill', 'fill']);
    expect(fills.map((f) => f.amount)).toEqual([parseCash('10.01'), parseCash('10.00')]);
    // The first part keeps what the second can cost at the limit; nothing is left held at the end.
    expect(fills[0]!.reservedAfter).toBe(parseCash('10.00'));
    expect(fills[1]!.reservedAfter).toBe(0n);
  });

  it('reports the exact value-weighted average price after each part', () => {
    fills.forEach((f, i) => expect(f.averagePrice).toBe(weightedAverage(fills.slice(0, i + 1))));
    expect(fills[4]!.averagePrice).toBe(parsePrice('50.3279'));
  });

  it('conserves the hold exactly: it is spent on costs and commissions or returned, nothing else', () => {
    assertHoldConserved(reserved, fills, states);
    expect(fills[4]!.reservedAfter).toBe(0n);
  });

  it('charges commission increments that sum to the whole order’s commission, the maximum applying once', () => {
    expect(fills.map((f) => f.commission)).toEqual(['35.00', '35.00', '35.00', '35.00', '10.00'].map((c) => parseCash(c)));
    const whole = commissionForValue(schedule, final.filledQuantity, final.filledValue);
    expect(whole).toBe(parseCash('150.00'));
    expect(sumOf(fills.map((f) => f.commission))).toBe(whole);
  });

  it('explains each part: model, version, params, the quote met, its age, the slippage and a reason', () => {
    fills.forEach((f, i) => {
      expect(f.explanation).toEqual({
        model: 'realistic',
        modelVersion: FILL_MODEL_VERSION,
        params: MID,
        quote: path[i],
        quoteAgeMs: 25,
        slippageCentiBps: f.explanation.slippageCentiBps,
        reason: f.explanation.reason,
      });
      expect(f.explanation.slippageCentiBps).toBeGreaterThan(0n);
      expect(f.explanation.reason.length).toBeGreaterThan(0);
      expect(f.explanation.reason).toMatch(/^realistic: /);
    });
    expect(fills[0]!.explanation.reason).toMatch(/displayed size/);
    expect(fills[1]!.explanation.reason).toMatch(/counting the shares it filled before/);
  });
});

describe('planExecution: the same order under ideal and spread', () => {
  const quantity = parseQty('50000');
  const path = [q('50.0000', '49.9700', '50.0300', '10000', T0)];
  const reserved = reservationFor(quantity, parsePrice('50'), 200n);

  it('ideal fills everything at once at the last price, with no slippage and no params', () => {
    const { fills, states } = run(order({ quantity, reservedAmount: reserved }), settings('ideal'), path);
    expect(fills).toHaveLength(1);
    const f = fills[0]!;
    expect(f).toMatchObject({ quantity, price: parsePrice('50'), amount: parseCash('2500000.00'), commission: 0n, heldReleased: reserved, reservedAfter: 0n, complete: true, averagePrice: parsePrice('50') });
    expect(f.explanation).toMatchObject({ model: 'ideal', modelVersion: FILL_MODEL_VERSION, params: null, slippageCentiBps: 0n });
    assertHoldConserved(reserved, fills, states);
  });

  it('spread fills everything at once at the ask (a buy) or the bid (a sell), whatever is displayed', () => {
    const buy = fill(planExecution(order({ quantity, reservedAmount: reserved }), settings('spread'), path[0]!, T0));
    expect(buy).toMatchObject({ quantity, price: parsePrice('50.03'), amount: parseCash('2501500.00'), complete: true, averagePrice: parsePrice('50.03') });
    expect(buy.explanation).toMatchObject({ model: 'spread', params: null, quoteAgeMs: 0 });
    const sell = fill(planExecution(order({ side: 'sell', quantity }), settings('spread'), path[0]!, T0));
    expect(sell).toMatchObject({ quantity, price: parsePrice('49.97'), amount: sellProceeds(quantity, parsePrice('49.97')), commission: 0n, heldReleased: 0n });
  });
});

describe('planExecution: a realistic sell in parts', () => {
  it('sells the displayed size at falling prices; its commission hold and proceeds balance exactly', () => {
    const quantity = parseQty('25000');
    const schedule: CommissionSchedule = { perOrder: parseCash('1.00'), perShare: 0n, bps: 5n, minimum: parseCash('2.00'), maximum: null };
    const held = parseCash('100.00');
    const path = [q('40.00', '39.98', '40.02', '20000', T0, '12000'), q('39.95', '39.93', '39.97', '20000', T0 + 500, '12000'), q('39.90', '39.88', '39.92', '20000', T0 + 900, '12000')];
    const { fills, states, final } = run(order({ side: 'sell', quantity, reservedAmount: held, commissionSchedule: schedule }), settings('realistic'), path);
    expect(fills.map((f) => f.quantity)).toEqual([parseQty('12000'), parseQty('12000'), parseQty('1000')]);
    fills.forEach((f, i) => {
      expect(f.price).toBeLessThanOrEqual(path[i]!.bid);
      expect(f.amount).toBe(sellProceeds(f.quantity, f.price));
      // A sell's commission fits in its part of the hold plus its proceeds.
      expect(f.commission).toBeLessThanOrEqual(f.heldReleased + f.amount);
      fills.slice(0, i).forEach((g) => expect(f.price).toBeLessThan(g.price));
    });
    fills.forEach((f, i) => expect(f.heldReleased + f.reservedAfter).toBe(states[i]!.reservedAmount));
    expect(sumOf(fills.map((f) => f.heldReleased))).toBe(held);
    expect(sumOf(fills.map((f) => f.commission))).toBe(commissionForValue(schedule, quantity, final.filledValue));
    expect(fills[2]!.averagePrice).toBe(weightedAverage(fills));
  });
});

describe('planExecution: nothing executes', () => {
  it('a fok whose quantity is not displayed whole gets none; one that is fills whole', () => {
    const quantity = parseQty('50000');
    const fok = order({ quantity, timeInForce: 'fok', reservedAmount: reservationFor(quantity, parsePrice('50'), 500n) });
    const thin = planExecution(fok, settings('realistic'), q('50', '49.97', '50.03', '10000'), T0);
    expect(thin.kind).toBe('none');
    expect(thin.kind === 'none' && thin.reason).toMatch(/^fok: only part of the quantity/);
    const deep = planExecution(fok, settings('realistic'), q('50', '49.97', '50.03', '60000'), T0);
    expect(fill(deep)).toMatchObject({ quantity, complete: true });
  });

  it('realistic with nothing displayed gets none and changes nothing', () => {
    const p = planExecution(order({ quantity: parseQty('10'), reservedAmount: parseCash('1000') }), settings('realistic'), q('50', '49.97', '50.03', '0'), T0);
    expect(p).toEqual({ kind: 'none', reason: expect.stringMatching(/nothing displayed at the ask/) });
  });
});

describe('planExecution: limits', () => {
  const quantity = parseQty('20000');
  const reserved = reservationFor(quantity, parsePrice('50.20'), 0n);

  it('under spread, a limit buy waits while the ask is above it and fills whole at the ask once it is reached', () => {
    const o = order({ quantity, reservedAmount: reserved, limitPrice: parsePrice('50.04') });
    const { plans, fills } = run(o, settings('spread'), [q('50.02', '49.99', '50.05', '100'), q('50.01', '49.98', '50.04', '100')]);
    expect(plans[0]).toEqual({ kind: 'none', reason: expect.stringMatching(/has not reached the limit/) });
    expect(fills).toHaveLength(1);
    expect(fills[0]).toMatchObject({ quantity, price: parsePrice('50.04'), complete: true });
    const sell = planExecution(order({ side: 'sell', quantity, limitPrice: parsePrice('49.99') }), settings('spread'), q('50.01', '49.98', '50.04', '100'), T0);
    expect(sell.kind).toBe('none');
  });

  it('under realistic, a limit buy takes the most the limit allows, never paying beyond it, then waits', () => {
    const limit = parsePrice('50.20');
    // Held at exactly quantity × limit, as a limit buy is.
    const o = order({ quantity, reservedAmount: reservationFor(quantity, limit, 0n), limitPrice: limit });
    const path = [q('50', '49.97', '50.03', '15000'), q('50', '49.97', '50.03', '15000')];
    const { plans, fills } = run(o, settings('realistic'), path);
    const first = fills[0]!;
    // All 15,000 would pay 50.03 × (1 + 36.75 bps) > 50.20: the limit caps it below the displayed size.
    expect(first.quantity).toBeGreaterThan(0n);
    expect(first.quantity).toBeLessThan(parseQty('15000'));
    expect(first.price).toBeLessThanOrEqual(limit);
    expect(first.price).toBeGreaterThanOrEqual(parsePrice('50.03'));
    expect(first.explanation.reason).toMatch(/the most the limit allows/);
    expect(first.complete).toBe(false);
    // Its impact has used the room under the limit: at the same touch the next call gets nothing.
    expect(plans[1]).toEqual({ kind: 'none', reason: expect.stringMatching(/smallest part would pass the limit/) });
    for (const f of fills) expect(f.price).toBeLessThanOrEqual(limit);
  });
});

describe('planExecution: commissions over partial fills', () => {
  it('increments sum to commissionForValue of the whole, with the minimum charged once and the maximum capping the rest', () => {
    // $0.005 a share, at least $1.00, at most $30.00; sizes 100, 1,000, 5,000, then the rest.
    const schedule: CommissionSchedule = { perOrder: 0n, perShare: parsePrice('0.005'), bps: 0n, minimum: parseCash('1.00'), maximum: parseCash('30.00') };
    const quantity = parseQty('12000');
    const reserved = reservationFor(quantity, parsePrice('20'), 300n) + parseCash('30.00');
    const path = ['100', '1000', '5000', '10000'].map((size, i) => q('20.00', '19.99', '20.01', size, T0 + i));
    const { fills, states, final } = run(order({ quantity, reservedAmount: reserved, commissionSchedule: schedule }), settings('realistic'), path);
    expect(fills.map((f) => f.quantity)).toEqual(['100', '1000', '5000', '5900'].map((x) => parseQty(x)));
    // 100 × 0.005 = 0.50 → the minimum 1.00; 1,100 → 5.50; 6,100 → 30.50 → the maximum 30.00; 12,000 → still 30.00.
    expect(fills.map((f) => f.commission)).toEqual([parseCash('1.00'), parseCash('4.50'), parseCash('24.50'), 0n]);
    const whole = commissionForValue(schedule, quantity, final.filledValue);
    expect(whole).toBe(parseCash('30.00'));
    expect(sumOf(fills.map((f) => f.commission))).toBe(whole);
    assertHoldConserved(reserved, fills, states);
  });

  it('increments always sum to the whole order’s commission and the hold is conserved, along any path (property)', () => {
    const schedules = fc.record({
      perOrder: fc.bigInt({ min: 0n, max: 500n }),
      perShare: fc.bigInt({ min: 0n, max: 100n }),
      bps: fc.bigInt({ min: 0n, max: 50n }),
      minimum: fc.bigInt({ min: 0n, max: 500n }),
      maximum: fc.option(fc.bigInt({ min: 500n, max: 50_000n }), { nil: null }),
    });
    // Displayed sizes are whole shares (as feeds publish them); the order a whole number of shares.
    const SHARE = 10n ** 6n;
    const steps = fc.array(fc.record({ ask: fc.bigInt({ min: 10_000n, max: 2_000_000n }), size: fc.bigInt({ min: 0n, max: 5_000n }).map((n) => n * SHARE) }), { minLength: 1, maxLength: 12 });
    fc.assert(
      fc.property(schedules, steps, fc.bigInt({ min: 1n, max: 20_000n }).map((n) => n * SHARE), fc.constantFrom('buy' as const, 'sell' as const), (schedule, path, quantity, side) => {
        // A hold large enough for any price on the path (a buy's cost; a sell's commission).
        const reserved = side === 'buy' ? reservationFor(quantity, 4_000_000n, 0n) + 100_000n : 100_000n;
        const quotes = path.map(({ ask, size }, i): ExecutionQuote => ({ last: ask, bid: ask - 1n, ask, bidSize: size, askSize: size, asOfMs: T0 + i }));
        const { plans, fills, states, final } = run(order({ side, quantity, reservedAmount: reserved, commissionSchedule: schedule }), settings('realistic'), quotes);
        expect(plans.some((p) => p.kind === 'refuse')).toBe(false);
        if (fills.length === 0) return;
        expect(sumOf(fills.map((f) => f.commission))).toBe(commissionForValue(schedule, final.filledQuantity, final.filledValue));
        fills.forEach((f, i) => expect(f.heldReleased + f.reservedAfter).toBe(states[i]!.reservedAmount));
        expect(sumOf(fills.map((f) => f.heldReleased)) + final.reservedAmount).toBe(reserved);
        expect(sumOf(fills.map((f) => f.quantity))).toBe(final.filledQuantity);
        expect(fills[fills.length - 1]!.averagePrice).toBe(weightedAverage(fills));
      }),
      { seed: 424_242, numRuns: 200 },
    );
  });
});

describe('planExecution: refusals', () => {
  it('PRICE_MOVED_BEYOND_RESERVATION: a buy whose cost at the execution price passes its hold', () => {
    const quantity = parseQty('100');
    const reserved = reservationFor(quantity, parsePrice('50'), 100n); // 5,050.00
    expect(planExecution(order({ quantity, reservedAmount: reserved }), settings('ideal'), q('50.6000', '50.59', '50.61', '100'), T0)).toEqual({ kind: 'refuse', reason: EXECUTION_REFUSALS.priceMovedBeyondReservation });
    // At exactly the hold it fills (cost 5,050.00 = hold), and releases everything.
    expect(fill(planExecution(order({ quantity, reservedAmount: reserved }), settings('ideal'), q('50.5000', '50.49', '50.51', '100'), T0))).toMatchObject({ amount: reserved, heldReleased: reserved, reservedAfter: 0n });
    // The commission counts too: a $1.00 fee on top of a cost that fills the hold exactly is refused.
    const fee: CommissionSchedule = { ...NO_COMMISSION, perOrder: parseCash('1.00') };
    expect(planExecution(order({ quantity, reservedAmount: reserved, commissionSchedule: fee }), settings('ideal'), q('50.5000', '50.49', '50.51', '100'), T0)).toEqual({ kind: 'refuse', reason: 'PRICE_MOVED_BEYOND_RESERVATION' });
  });

  it('PRICE_MOVED_BEYOND_RESERVATION: a later part of a realistic buy whose impact outgrows its share of the hold', () => {
    const quantity = parseQty('30000');
    const reserved = reservationFor(quantity, parsePrice('50.03'), 40n); // 0.4 % buffer over the ask
    const path = ['50.03', '50.03', '50.03'].map((ask, i) => q('50', '49.97', ask, '10000', T0 + i));
    const { plans, fills } = run(order({ quantity, reservedAmount: reserved }), settings('realistic'), path);
    // The first part's 30 bps fits in the buffer; the second part's 42.42 bps does not.
    expect(fills).toHaveLength(1);
    expect(plans[1]).toEqual({ kind: 'refuse', reason: EXECUTION_REFUSALS.priceMovedBeyondReservation });
  });

  it('VALUE_ROUNDS_TO_ZERO: a sell whose proceeds round down to nothing', () => {
    // 0.000001 shares at 1.0000 are worth 0.000001 dollars: 0.00 after rounding down.
    expect(planExecution(order({ side: 'sell', quantity: 1n }), settings('ideal'), q('1', '1', '1', '100'), T0)).toEqual({ kind: 'refuse', reason: EXECUTION_REFUSALS.valueRoundsToZero });
    // 0.01 shares at 1.0000 are worth 0.01: it fills.
    expect(fill(planExecution(order({ side: 'sell', quantity: parseQty('0.01') }), settings('ideal'), q('1', '1', '1', '100'), T0)).amount).toBe(1n);
  });

  it('COMMISSION_EXCEEDS_PROCEEDS: a sell whose commission passes its proceeds and its commission hold', () => {
    const fee: CommissionSchedule = { ...NO_COMMISSION, perOrder: parseCash('5.00') };
    const o = order({ side: 'sell', quantity: parseQty('1'), commissionSchedule: fee });
    expect(planExecution({ ...o, reservedAmount: parseCash('3.99') }, settings('spread'), q('1.00', '1.00', '1.01', '100'), T0)).toEqual({ kind: 'refuse', reason: EXECUTION_REFUSALS.commissionExceedsProceeds });
    // With 4.00 held, 4.00 + 1.00 of proceeds pay the 5.00 exactly.
    expect(fill(planExecution({ ...o, reservedAmount: parseCash('4.00') }, settings('spread'), q('1.00', '1.00', '1.01', '100'), T0))).toMatchObject({ amount: parseCash('1.00'), commission: parseCash('5.00'), heldReleased: parseCash('4.00') });
  });
});

describe('planExecution: explanation', () => {
  it('carries quoteAgeMs = now − asOf (and 0, never negative, for a quote stamped after now)', () => {
    const o = order({ quantity: parseQty('1'), reservedAmount: parseCash('1000') });
    const quote = q('50', '49.97', '50.03', '100', T0);
    expect(fill(planExecution(o, settings('spread'), quote, T0 + 1_234)).explanation.quoteAgeMs).toBe(1_234);
    expect(fill(planExecution(o, settings('spread'), quote, T0 - 10)).explanation.quoteAgeMs).toBe(0);
    const e = fill(planExecution(o, settings('spread'), quote, T0 + 7)).explanation;
    expect(e).toEqual({ model: 'spread', modelVersion: FILL_MODEL_VERSION, params: null, quote, quoteAgeMs: 7, slippageCentiBps: 0n, reason: 'spread: the whole quantity at the ask' });
  });
});

describe('planExecution: determinism', () => {
  it('the same inputs give deep-equal plans (property)', () => {
    const arbOrder = fc
      .record({
        side: fc.constantFrom('buy' as const, 'sell' as const),
        timeInForce: fc.constantFrom('day' as const, 'gtc' as const, 'ioc' as const, 'fok' as const),
        quantity: fc.bigInt({ min: 2n, max: 10n ** 11n }),
        filledPart: fc.bigInt({ min: 0n, max: 99n }),
        fillPrice: fc.bigInt({ min: 1n, max: 10n ** 7n }),
        reservedAmount: fc.bigInt({ min: 0n, max: 10n ** 12n }),
        perOrder: fc.bigInt({ min: 0n, max: 1_000n }),
        bps: fc.bigInt({ min: 0n, max: 30n }),
        limitPrice: fc.option(fc.bigInt({ min: 1n, max: 10n ** 7n }), { nil: null }),
      })
      .map((r): ExecutableOrder => {
        const filledQuantity = (r.quantity * r.filledPart) / 100n;
        const filledValue = filledQuantity * r.fillPrice;
        const schedule: CommissionSchedule = { ...NO_COMMISSION, perOrder: r.perOrder, bps: r.bps };
        return {
          side: r.side,
          timeInForce: r.timeInForce,
          quantity: r.quantity,
          filledQuantity,
          filledValue,
          reservedAmount: r.reservedAmount,
          commissionCharged: filledQuantity > 0n ? commissionForValue(schedule, filledQuantity, filledValue) : 0n,
          commissionSchedule: schedule,
          limitPrice: r.limitPrice,
        };
      });
    const arbQuote = fc
      .tuple(fc.bigInt({ min: 1n, max: 10n ** 7n }), fc.bigInt({ min: 0n, max: 10_000n }), fc.bigInt({ min: 0n, max: 10n ** 11n }), fc.integer({ min: 0, max: 10_000 }))
      .map(([bid, spread, size, age]): ExecutionQuote => ({ bid, ask: bid + spread, last: bid + spread / 2n, bidSize: size, askSize: size, asOfMs: T0 - age }));
    fc.assert(
      fc.property(arbOrder, arbQuote, fc.constantFrom<FillModelName>('ideal', 'spread', 'realistic'), fc.constantFrom(TIER_PARAMS.large, TIER_PARAMS.mid, TIER_PARAMS.small), (o, quote, model, tier) => {
        const s = settings(model, { impactCoefficientBps: tier.impactCoefficientBps, dailyVolume: tier.dailyVolume });
        const a = planExecution(o, s, quote, T0);
        const b = planExecution(structuredClone(o), structuredClone(s), structuredClone(quote), T0);
        expect(b).toEqual(a);
        if (a.kind === 'fill') expect(a.explanation.quoteAgeMs).toBe(T0 - quote.asOfMs);
      }),
      { seed: 777, numRuns: 300 },
    );
  });
});
