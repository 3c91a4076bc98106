/**
 * A class's rules: what the admin may set when creating a class, how they are validated, and
 * whether an order breaks one. Pure: the OMS gathers the facts (the member's equity, position,
 * live buys and orders today) under the member's lock and asks here.
 *
 * Every rule is optional; an absent rule allows everything.
 * - `tickers`: the only tickers members may trade.
 * - `order_types`: the only order types members may use.
 * - `max_position_pct`: a buy may not take the member's position in one ticker (shares held plus
 *   live buys plus this order, valued at the quote) above this percent of the member's equity.
 * - `max_orders_per_day`: orders a member may place per market day (replacements count: each is
 *   a new order).
 * - `commission_per_order`: cash charged on each order that fills, held with the order until then
 *   (the schedule with only a per-order fee).
 * - `commission`: a full commission schedule (commissions.ts: per order, per share, basis points,
 *   minimum, maximum); it takes the place of the deployment's. Not with `commission_per_order`.
 * - `fill_model`: the fill model members' orders fill under (ideal, spread, realistic), in place
 *   of the deployment's.
 */
import { commissionScheduleToJson, parseCommissionSchedule, type CommissionSchedule } from './commissions.js';
import { ValidationError } from './errors.js';
import { FILL_MODELS, type FillModelName } from './fill-models.js';
import { formatCash, formatFixed, parseCash, parseDecimal, type Cash } from './money.js';
import { ORDER_TYPES, type OrderType, type Side } from './order-terms.js';

/** Percent with 2 decimals, as bigint hundredths of a percent (12.5% = 1250n). */
export type Pct = bigint;
export const PCT_SCALE = 2;
const PCT_100: Pct = 100_00n;

export const RULE_TICKERS_MAX = 500;
export const ORDERS_PER_DAY_MAX = 1_000_000;
const TICKER_RE = /^[A-Za-z][A-Za-z0-9.]{0,9}$/;

export interface ClassRules {
  tickers: readonly string[] | null;
  orderTypes: readonly OrderType[] | null;
  maxPositionPct: Pct | null;
  maxOrdersPerDay: number | null;
  commissionPerOrder: Cash;
  /** The `commission` rule; null: none set (commission_per_order, if any, still applies). */
  commission: CommissionSchedule | null;
  fillModel: FillModelName | null;
}

export const NO_RULES: ClassRules = { tickers: null, orderTypes: null, maxPositionPct: null, maxOrdersPerDay: null, commissionPerOrder: 0n, commission: null, fillModel: null };

/**
 * The schedule a member's orders pay: the `commission` rule, else `commission_per_order` as a
 * per-order fee, else undefined (the deployment's schedule applies).
 */
export function classCommissionSchedule(r: ClassRules): CommissionSchedule | undefined {
  if (r.commission !== null) return r.commission;
  if (r.commissionPerOrder > 0n) return { perOrder: r.commissionPerOrder, perShare: 0n, bps: 0n, minimum: 0n, maximum: null };
  return undefined;
}

export type RuleName = 'tickers' | 'order_types' | 'max_position_pct' | 'max_orders_per_day';

const RULE_FIELDS = ['tickers', 'order_types', 'max_position_pct', 'max_orders_per_day', 'commission_per_order', 'commission', 'fill_model'] as const;

/**
 * Validates rules as a request gives them (or as stored). Tickers are upper-cased here; whether
 * they are listed is for market data to say. Unknown fields are refused, so a typo never
 * silently allows everything.
 */
export function parseClassRules(input: unknown, field = 'rules'): ClassRules {
  if (input === undefined || input === null) return NO_RULES;
  if (typeof input !== 'object' || Array.isArray(input)) throw new ValidationError(`${field} must be an object`, { field });
  const raw = input as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!(RULE_FIELDS as readonly string[]).includes(key)) {
      throw new ValidationError(`${field}.${key} is not a rule; the rules are ${RULE_FIELDS.join(', ')}`, { field: `${field}.${key}` });
    }
  }
  if (raw.commission !== undefined && raw.commission_per_order !== undefined) {
    throw new ValidationError(`${field}: give commission (a schedule) or commission_per_order, not both`, { field: `${field}.commission` });
  }
  if (raw.fill_model !== undefined && !(FILL_MODELS as readonly unknown[]).includes(raw.fill_model)) {
    throw new ValidationError(`${field}.fill_model must be one of: ${FILL_MODELS.join(', ')}`, { field: `${field}.fill_model` });
  }
  return {
    commission: raw.commission === undefined ? null : parseCommissionSchedule(raw.commission, `${field}.commission`),
    fillModel: raw.fill_model === undefined ? null : (raw.fill_model as FillModelName),
    tickers: raw.tickers === undefined ? null : parseTickers(raw.tickers, `${field}.tickers`),
    orderTypes: raw.order_types === undefined ? null : parseOrderTypes(raw.order_types, `${field}.order_types`),
    maxPositionPct: raw.max_position_pct === undefined ? null : parsePct(raw.max_position_pct, `${field}.max_position_pct`),
    maxOrdersPerDay: raw.max_orders_per_day === undefined ? null : parseOrdersPerDay(raw.max_orders_per_day, `${field}.max_orders_per_day`),
    commissionPerOrder:
      raw.commission_per_order === undefined ? 0n : parseCash(raw.commission_per_order, `${field}.commission_per_order`, { allowZero: true }),
  };
}

function parseTickers(input: unknown, field: string): string[] {
  if (!Array.isArray(input) || input.length === 0 || input.length > RULE_TICKERS_MAX) {
    throw new ValidationError(`${field} must be a list of 1 to ${RULE_TICKERS_MAX} tickers`, { field });
  }
  const out = new Set<string>();
  for (const t of input) {
    if (typeof t !== 'string' || !TICKER_RE.test(t)) throw new ValidationError(`${field} holds ${JSON.stringify(t)}, which is not a ticker`, { field });
    out.add(t.toUpperCase());
  }
  return [...out].sort();
}

function parseOrderTypes(input: unknown, field: string): OrderType[] {
  if (!Array.isArray(input) || input.length === 0 || input.length > ORDER_TYPES.length) {
    throw new ValidationError(`${field} must be a list of order types from ${ORDER_TYPES.join(', ')}`, { field });
  }
  const out = new Set<OrderType>();
  for (const t of input) {
    if (typeof t !== 'string' || !(ORDER_TYPES as readonly string[]).includes(t)) {
      throw new ValidationError(`${field} holds ${JSON.stringify(t)}; order types are ${ORDER_TYPES.join(', ')}`, { field });
    }
    out.add(t as OrderType);
  }
  return ORDER_TYPES.filter((t) => out.has(t));
}

function parsePct(input: unknown, field: string): Pct {
  const pct = parseDecimal(input, { scale: PCT_SCALE, max: PCT_100, field });
  return pct;
}

function parseOrdersPerDay(input: unknown, field: string): number {
  if (typeof input !== 'number' || !Number.isInteger(input) || input < 1 || input > ORDERS_PER_DAY_MAX) {
    throw new ValidationError(`${field} must be a whole number from 1 to ${ORDERS_PER_DAY_MAX}`, { field });
  }
  return input;
}

/** The rules as stored (jsonb) and shown (API): absent rules are left out; amounts as decimal strings. */
export function classRulesJson(r: ClassRules): Record<string, unknown> {
  return {
    ...(r.tickers ? { tickers: r.tickers } : {}),
    ...(r.orderTypes ? { order_types: r.orderTypes } : {}),
    ...(r.maxPositionPct !== null ? { max_position_pct: formatFixed(r.maxPositionPct, PCT_SCALE) } : {}),
    ...(r.maxOrdersPerDay !== null ? { max_orders_per_day: r.maxOrdersPerDay } : {}),
    // A schedule takes the per-order fee's place: the two are never stored (or shown) together.
    ...(r.commission !== null ? { commission: commissionScheduleToJson(r.commission) } : { commission_per_order: formatCash(r.commissionPerOrder) }),
    ...(r.fillModel !== null ? { fill_model: r.fillModel } : {}),
  };
}

/** When the class is open for trading: [startsAt, endsAt), either end open when null. */
export function classOpenAt(window: { startsAt: Date | null; endsAt: Date | null }, now: Date): boolean {
  return (window.startsAt === null || now >= window.startsAt) && (window.endsAt === null || now < window.endsAt);
}

/** What the OMS knows about an order and its member when it asks. Cash in cents. */
export interface OrderFacts {
  ticker: string;
  type: OrderType;
  side: Side;
  /** Orders the member placed today, not counting this one. */
  ordersToday: number;
  /** Buys only: the member's position in the ticker after this order (held + live buys + this), valued at the quote. */
  positionValueAfter: Cash;
  /** Buys only: cash plus positions at market. */
  equity: Cash;
}

export interface RuleViolation {
  rule: RuleName;
  message: string;
  details: Record<string, unknown>;
}

/** The first rule the order breaks, in the order the rules are listed above; undefined when none. */
export function ruleViolation(rules: ClassRules, o: OrderFacts): RuleViolation | undefined {
  if (rules.tickers && !rules.tickers.includes(o.ticker)) {
    return {
      rule: 'tickers',
      message: `rule tickers: ${o.ticker} is not traded in this class; allowed: ${rules.tickers.join(', ')}`,
      details: { rule: 'tickers', ticker: o.ticker, allowed: rules.tickers },
    };
  }
  if (rules.orderTypes && !rules.orderTypes.includes(o.type)) {
    return {
      rule: 'order_types',
      message: `rule order_types: ${o.type} orders are not allowed in this class; allowed: ${rules.orderTypes.join(', ')}`,
      details: { rule: 'order_types', type: o.type, allowed: rules.orderTypes },
    };
  }
  if (rules.maxOrdersPerDay !== null && o.ordersToday >= rules.maxOrdersPerDay) {
    return {
      rule: 'max_orders_per_day',
      message: `rule max_orders_per_day: ${o.ordersToday} orders placed today, the class allows ${rules.maxOrdersPerDay} a day`,
      details: { rule: 'max_orders_per_day', orders_today: o.ordersToday, allowed: rules.maxOrdersPerDay },
    };
  }
  if (rules.maxPositionPct !== null && o.side === 'buy' && !withinPct(o.positionValueAfter, o.equity, rules.maxPositionPct)) {
    const pct = formatFixed(rules.maxPositionPct, PCT_SCALE);
    return {
      rule: 'max_position_pct',
      message: `rule max_position_pct: the position in ${o.ticker} would be worth ${formatCash(o.positionValueAfter)}, above ${pct}% of equity ${formatCash(o.equity)}`,
      details: { rule: 'max_position_pct', ticker: o.ticker, position_value: formatCash(o.positionValueAfter), equity: formatCash(o.equity), allowed_pct: pct },
    };
  }
  return undefined;
}

/** value <= pct% of total, exactly (no division): value × 100_00 <= total × pct. */
export function withinPct(value: Cash, total: Cash, pct: Pct): boolean {
  return value * PCT_100 <= total * pct;
}

