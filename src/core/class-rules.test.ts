import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classCommissionSchedule, classOpenAt, classRulesJson, NO_RULES, parseClassRules, ruleViolation, withinPct, type OrderFacts } from './class-rules.js';
import { ValidationError } from './errors.js';

const facts = (over: Partial<OrderFacts> = {}): OrderFacts => ({
  ticker: 'AAPL',
  type: 'market',
  side: 'buy',
  ordersToday: 0,
  positionValueAfter: 0n,
  equity: 1_000_000n,
  ...over,
});

function refusal(input: unknown): string {
  try {
    parseClassRules(input);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as Error).message;
  }
  throw new Error('expected a refusal');
}

describe('parseClassRules', () => {
  it('absent rules allow everything, and the commission defaults to 0.00', () => {
    expect(parseClassRules(undefined)).toEqual(NO_RULES);
    expect(parseClassRules({})).toEqual(NO_RULES);
    expect(classRulesJson(NO_RULES)).toEqual({ commission_per_order: '0.00' });
  });

  it('reads every rule, upper-cases and de-duplicates tickers, keeps order types in their canonical order', () => {
    const rules = parseClassRules({
      tickers: ['msft', 'AAPL', 'aapl'],
      order_types: ['limit', 'market'],
      max_position_pct: '12.5',
      max_orders_per_day: 20,
      commission_per_order: 4.95,
    });
    expect(rules).toEqual({ tickers: ['AAPL', 'MSFT'], orderTypes: ['market', 'limit'], maxPositionPct: 1250n, maxOrdersPerDay: 20, commissionPerOrder: 495n, commission: null, fillModel: null });
    expect(classRulesJson(rules)).toEqual({
      tickers: ['AAPL', 'MSFT'],
      order_types: ['market', 'limit'],
      max_position_pct: '12.50',
      max_orders_per_day: 20,
      commission_per_order: '4.95',
    });
    // What is stored reads back the same.
    expect(parseClassRules(classRulesJson(rules))).toEqual(rules);
  });

  it('reads a commission schedule and a fill model, and refuses them with commission_per_order or an unknown model', () => {
    const rules = parseClassRules({ commission: { per_share: '0.005', minimum: '1.00', maximum: '50' }, fill_model: 'realistic' });
    expect(rules.commission).toEqual({ perOrder: 0n, perShare: 50n, bps: 0n, minimum: 100n, maximum: 5000n });
    expect(rules.fillModel).toBe('realistic');
    expect(classCommissionSchedule(rules)).toEqual(rules.commission);
    expect(parseClassRules(classRulesJson(rules))).toEqual(rules);
    expect(classCommissionSchedule(parseClassRules({ commission_per_order: '4.95' }))).toEqual({ perOrder: 495n, perShare: 0n, bps: 0n, minimum: 0n, maximum: null });
    expect(classCommissionSchedule(parseClassRules({}))).toBeUndefined();
    expect(refusal({ commission: { per_order: '1' }, commission_per_order: '1' })).toBe('rules: give commission (a schedule) or commission_per_order, not both');
    expect(refusal({ fill_model: 'perfect' })).toBe('rules.fill_model must be one of: ideal, spread, realistic');
  });

  it('refuses each bad rule in words that say what is allowed', () => {
    expect(refusal([])).toBe('rules must be an object');
    expect(refusal({ max_positions: 3 })).toBe('rules.max_positions is not a rule; the rules are tickers, order_types, max_position_pct, max_orders_per_day, commission_per_order, commission, fill_model');
    expect(refusal({ tickers: [] })).toBe('rules.tickers must be a list of 1 to 500 tickers');
    expect(refusal({ tickers: ['AAPL', 'not a ticker'] })).toBe('rules.tickers holds "not a ticker", which is not a ticker');
    expect(refusal({ order_types: ['market', 'iceberg'] })).toContain('rules.order_types holds "iceberg"; order types are market, limit');
    expect(refusal({ max_position_pct: '0' })).toMatch(/^rules.max_position_pct must be greater than zero/);
    expect(refusal({ max_position_pct: '100.01' })).toContain('rules.max_position_pct');
    expect(refusal({ max_orders_per_day: 0 })).toBe('rules.max_orders_per_day must be a whole number from 1 to 1000000');
    expect(refusal({ max_orders_per_day: 2.5 })).toContain('whole number');
    expect(refusal({ commission_per_order: '-1' })).toContain('commission_per_order');
    expect(refusal({ commission_per_order: '0.001' })).toContain('commission_per_order');
  });
});

describe('ruleViolation', () => {
  it('names the first rule broken: tickers, then order types, orders per day, the position limit', () => {
    const rules = parseClassRules({ tickers: ['MSFT'], order_types: ['market'], max_orders_per_day: 1, max_position_pct: '10' });
    expect(ruleViolation(rules, facts({ type: 'limit', ordersToday: 5 }))?.rule).toBe('tickers');
    expect(ruleViolation(rules, facts({ ticker: 'MSFT', type: 'limit', ordersToday: 5 }))?.rule).toBe('order_types');
    expect(ruleViolation(rules, facts({ ticker: 'MSFT', ordersToday: 1 }))?.rule).toBe('max_orders_per_day');
    expect(ruleViolation(rules, facts({ ticker: 'MSFT', positionValueAfter: 100_001n }))?.rule).toBe('max_position_pct');
    expect(ruleViolation(rules, facts({ ticker: 'MSFT', positionValueAfter: 100_000n }))).toBeUndefined();
  });

  it('never refuses a sell for the position limit', () => {
    const rules = parseClassRules({ max_position_pct: '1' });
    expect(ruleViolation(rules, facts({ side: 'sell', positionValueAfter: 10n ** 12n }))).toBeUndefined();
  });

  it('withinPct is exact: value <= pct% of total, for any amounts', () => {
    fc.assert(
      fc.property(fc.bigInt(0n, 10n ** 14n), fc.bigInt(0n, 10n ** 14n), fc.bigInt(1n, 10_000n), (value, total, pct) => {
        // The same comparison with the percentage taken as an exact rational.
        expect(withinPct(value, total, pct)).toBe(value * 10_000n <= total * pct);
      }),
    );
    expect(withinPct(2_000_00n, 10_000_00n, 20_00n)).toBe(true);
    expect(withinPct(2_000_01n, 10_000_00n, 20_00n)).toBe(false);
  });
});

describe('classOpenAt', () => {
  const t = (iso: string) => new Date(iso);
  it('is [starts_at, ends_at): open at the start, closed at the end; a missing end is open', () => {
    const w = { startsAt: t('2026-01-05T14:30:00Z'), endsAt: t('2026-01-09T21:00:00Z') };
    expect(classOpenAt(w, t('2026-01-05T14:29:59.999Z'))).toBe(false);
    expect(classOpenAt(w, t('2026-01-05T14:30:00Z'))).toBe(true);
    expect(classOpenAt(w, t('2026-01-09T20:59:59.999Z'))).toBe(true);
    expect(classOpenAt(w, t('2026-01-09T21:00:00Z'))).toBe(false);
    expect(classOpenAt({ startsAt: null, endsAt: null }, t('1999-01-01T00:00:00Z'))).toBe(true);
  });
});
