/**
 * What an order asks for — its type, prices and time in force — and the pure rules that follow
 * from them: which fields each type takes, the cash a buy holds, when a price triggers a stop or
 * makes a limit marketable, and how a trailing stop's level follows the market.
 *
 * Prices are the ticks of the quote store: an order only ever fills at a price that was quoted,
 * the tick that made it executable (so a gap through a limit fills at the gap price).
 */
import { ValidationError } from './errors.js';
import { divRound, parseDecimal, parsePrice, PRICE_MAX, reservationFor, type Cash, type Price, type Qty } from './money.js';

export const ORDER_TYPES = ['market', 'limit', 'stop', 'stop_limit', 'trailing_stop'] as const;
export type OrderType = (typeof ORDER_TYPES)[number];
export const TIMES_IN_FORCE = ['day', 'gtc', 'ioc', 'fok', 'opg', 'cls'] as const;
export type TimeInForce = (typeof TIMES_IN_FORCE)[number];
export type Side = 'buy' | 'sell';

/** A trailing percent in hundredths of a percent: 5% is 500n; allowed 0.01% to 99.99%. */
export type TrailPercent = bigint;
export const TRAIL_PERCENT_SCALE = 2;
const HUNDRED_PERCENT = 10_000n;

export interface OrderTerms {
  side: Side;
  type: OrderType;
  timeInForce: TimeInForce;
  quantity: Qty;
  limitPrice: Price | null;
  stopPrice: Price | null;
  trailPrice: Price | null;
  trailPercent: TrailPercent | null;
}

/** The fields a request may carry beside side, type and quantity, as received (JSON numbers or strings). */
export interface RawTerms {
  type: string;
  time_in_force?: string | undefined;
  limit_price?: unknown;
  stop_price?: unknown;
  trail_price?: unknown;
  trail_percent?: unknown;
}

const TAKES: Record<OrderType, { limit: boolean; stop: boolean; trail: boolean }> = {
  market: { limit: false, stop: false, trail: false },
  limit: { limit: true, stop: false, trail: false },
  stop: { limit: false, stop: true, trail: false },
  stop_limit: { limit: true, stop: true, trail: false },
  trailing_stop: { limit: false, stop: false, trail: true },
};

/**
 * Reads an order's type-specific fields, refusing (ValidationError naming the field) a field
 * that does not belong to the type, a missing required one, a non-positive price, and a time in
 * force the type cannot have (`opg`/`cls` are for market and limit orders only).
 */
export function parseTerms(side: Side, quantity: Qty, raw: RawTerms): OrderTerms {
  if (!(ORDER_TYPES as readonly string[]).includes(raw.type)) {
    throw new ValidationError(`type must be one of: ${ORDER_TYPES.join(', ')}`, { field: 'type' });
  }
  const type = raw.type as OrderType;
  const tif = raw.time_in_force ?? 'day';
  if (!(TIMES_IN_FORCE as readonly string[]).includes(tif)) {
    throw new ValidationError(`time_in_force must be one of: ${TIMES_IN_FORCE.join(', ')}`, { field: 'time_in_force' });
  }
  const timeInForce = tif as TimeInForce;
  if ((timeInForce === 'opg' || timeInForce === 'cls') && type !== 'market' && type !== 'limit') {
    throw new ValidationError(`time_in_force ${timeInForce} is only for market and limit orders, not ${type}`, { field: 'time_in_force' });
  }
  const takes = TAKES[type];
  const price = (field: 'limit_price' | 'stop_price' | 'trail_price', wanted: boolean): Price | null => {
    const value = raw[field];
    if (value === undefined || value === null) {
      if (wanted) throw new ValidationError(`${field} is required for a ${type} order`, { field });
      return null;
    }
    if (!wanted) throw new ValidationError(`${field} does not apply to a ${type} order`, { field });
    return parsePrice(value, field);
  };
  const limitPrice = price('limit_price', takes.limit);
  const stopPrice = price('stop_price', takes.stop);
  let trailPrice: Price | null = null;
  let trailPercent: TrailPercent | null = null;
  const hasPrice = raw.trail_price !== undefined && raw.trail_price !== null;
  const hasPercent = raw.trail_percent !== undefined && raw.trail_percent !== null;
  if (!takes.trail) {
    if (hasPrice) throw new ValidationError(`trail_price does not apply to a ${type} order`, { field: 'trail_price' });
    if (hasPercent) throw new ValidationError(`trail_percent does not apply to a ${type} order`, { field: 'trail_percent' });
  } else {
    if (hasPrice === hasPercent) {
      throw new ValidationError('a trailing_stop order takes exactly one of trail_price and trail_percent', { field: hasPrice ? 'trail_percent' : 'trail_price' });
    }
    if (hasPrice) trailPrice = parsePrice(raw.trail_price, 'trail_price');
    else trailPercent = parseTrailPercent(raw.trail_percent);
  }
  return { side, type, timeInForce, quantity, limitPrice, stopPrice, trailPrice, trailPercent };
}

/** A percent strictly between 0 and 100 with at most 2 decimals, in hundredths of a percent. */
export function parseTrailPercent(input: unknown): TrailPercent {
  const value = parseDecimal(input, { scale: TRAIL_PERCENT_SCALE, max: HUNDRED_PERCENT, field: 'trail_percent' });
  if (value >= HUNDRED_PERCENT) throw new ValidationError('trail_percent must be below 100', { field: 'trail_percent' });
  return value;
}

/**
 * The cash a buy holds when it is accepted, rounded up to the cent (API contract):
 * market — quantity × quote × (1 + buffer); limit and stop_limit — quantity × limit (a limit
 * never pays more); stop — quantity × the higher of stop and quote × (1 + buffer): a buy stop
 * at or below the market triggers at once and executes at about the quote, so a hold on the
 * stop price alone would refuse it at its final check though nothing moved; trailing_stop —
 * quantity × (quote + trail) × (1 + buffer). Sells hold shares, not cash: 0.
 */
export function holdFor(terms: OrderTerms, quote: Price, bufferBps: bigint): Cash {
  if (terms.side === 'sell') return 0n;
  switch (terms.type) {
    case 'market':
      return reservationFor(terms.quantity, quote, bufferBps);
    case 'limit':
    case 'stop_limit':
      return reservationFor(terms.quantity, terms.limitPrice!, 0n);
    case 'stop':
      return reservationFor(terms.quantity, terms.stopPrice! > quote ? terms.stopPrice! : quote, bufferBps);
    case 'trailing_stop':
      return reservationFor(terms.quantity, quote + trailAmount(terms, quote), bufferBps);
  }
}

/** A trailing stop's distance from `reference`: the trail price, or the percent of it (rounded up). */
export function trailAmount(terms: Pick<OrderTerms, 'trailPrice' | 'trailPercent'>, reference: Price): Price {
  if (terms.trailPrice !== null) return terms.trailPrice;
  return divRound(reference * terms.trailPercent!, HUNDRED_PERCENT, 'up');
}

/**
 * A trailing stop's trigger level from the best price seen since placement (`extreme`: the
 * high-water mark of a sell, the low of a buy), rounded to 4 decimals toward the market: a
 * sell's level (below the market) rounds up, a buy's (above it) rounds down.
 */
export function trailingLevel(side: Side, extreme: Price, terms: Pick<OrderTerms, 'trailPrice' | 'trailPercent'>): Price {
  if (terms.trailPrice !== null) {
    const level = side === 'sell' ? extreme - terms.trailPrice : extreme + terms.trailPrice;
    return level < 1n ? 1n : level > PRICE_MAX ? PRICE_MAX : level;
  }
  const pct = terms.trailPercent!;
  return side === 'sell'
    ? divRound(extreme * (HUNDRED_PERCENT - pct), HUNDRED_PERCENT, 'up')
    : divRound(extreme * (HUNDRED_PERCENT + pct), HUNDRED_PERCENT, 'down');
}

/** The best price since placement after a tick at `price`: the higher for a sell, the lower for a buy. */
export function nextExtreme(side: Side, extreme: Price, price: Price): Price {
  return side === 'sell' ? (price > extreme ? price : extreme) : price < extreme ? price : extreme;
}

/** A limit executes at a price at or better than it: at or below for a buy, at or above for a sell. */
export function limitReached(side: Side, limit: Price, price: Price): boolean {
  return side === 'buy' ? price <= limit : price >= limit;
}

/** A stop triggers at its price or beyond: at or above for a buy, at or below for a sell. */
export function stopReached(side: Side, stop: Price, price: Price): boolean {
  return side === 'buy' ? price >= stop : price <= stop;
}

/** The state a resting order carries between ticks. */
export interface RestingState {
  /** Set once a stop or stop_limit has triggered (a stop_limit then behaves as its limit). */
  triggered: boolean;
  /** Trailing stops: the best price since placement and the trigger level that follows from it. */
  extreme: Price | null;
  stopLevel: Price | null;
}

export type TickOutcome =
  /** Executable now, at this tick's price. */
  | { kind: 'execute'; price: Price; triggered: boolean }
  /** Not executable; the state to keep (it may have changed: a trigger, a new high-water mark). */
  | { kind: 'rest'; state: RestingState };

/**
 * What a tick at `price` does to an order that rests on its price (the market being open):
 * a limit executes when reached; a stop triggers when reached and then executes as a market
 * order (a stop_limit as its limit, possibly at the same tick); a trailing stop first moves its
 * level with the market, then triggers when the price reaches the level. Market orders waiting
 * for the open execute at any price.
 */
export function onTick(terms: OrderTerms, state: RestingState, price: Price): TickOutcome {
  const { side } = terms;
  switch (terms.type) {
    case 'market':
      return { kind: 'execute', price, triggered: false };
    case 'limit':
      return limitReached(side, terms.limitPrice!, price) ? { kind: 'execute', price, triggered: false } : { kind: 'rest', state };
    case 'stop':
      return stopReached(side, terms.stopPrice!, price) ? { kind: 'execute', price, triggered: true } : { kind: 'rest', state };
    case 'stop_limit': {
      const triggered = state.triggered || stopReached(side, terms.stopPrice!, price);
      if (!triggered) return { kind: 'rest', state };
      if (limitReached(side, terms.limitPrice!, price)) return { kind: 'execute', price, triggered: true };
      return { kind: 'rest', state: { ...state, triggered: true } };
    }
    case 'trailing_stop': {
      const extreme = nextExtreme(side, state.extreme ?? price, price);
      const stopLevel = trailingLevel(side, extreme, terms);
      if (stopReached(side, stopLevel, price)) return { kind: 'execute', price, triggered: true };
      return { kind: 'rest', state: { triggered: false, extreme, stopLevel } };
    }
  }
}

/** What an order that replaced another carries over from it (API: PATCH /orders/{id}). */
export interface PriorState {
  /** Trailing stops: the best price the replaced order had seen. */
  extreme: Price | null;
  /** stop_limit: the replaced order had triggered (and its stop did not change). */
  triggered: boolean;
}

/**
 * The state an order starts resting with, given the quote when it is placed (trailing: its first
 * extreme). A replacement starts from the state of the order it replaced: a trailing stop keeps
 * the best price seen since the first placement (its level follows from that and its own trail),
 * a triggered stop_limit stays triggered.
 */
export function initialState(terms: OrderTerms, quote: Price | undefined, prior?: PriorState): RestingState {
  const triggered = terms.type === 'stop_limit' && prior?.triggered === true;
  if (terms.type !== 'trailing_stop') return { triggered, extreme: null, stopLevel: null };
  const seen = prior?.extreme ?? null;
  const extreme = seen === null ? (quote ?? null) : quote === undefined ? seen : nextExtreme(terms.side, seen, quote);
  if (extreme === null) return { triggered: false, extreme: null, stopLevel: null };
  return { triggered: false, extreme, stopLevel: trailingLevel(terms.side, extreme, terms) };
}
