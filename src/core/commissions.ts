/**
 * Commission schedules: a fee per order, per share and in basis points of the fill's value,
 * with a minimum and a maximum, as brokers publish them. Pure bigint: the commission of a fill
 * is its exact value rounded up to the cent (a fee is charged, never shaved), then held within
 * [minimum, maximum]. A schedule of zeros charges nothing; the class rule
 * `commission_per_order` is the schedule with only `perOrder` set.
 */
import { assert, ValidationError } from './errors.js';
import { divRound, formatCash, formatPrice, parseCash, parseDecimal, PRICE_MAX, PRICE_SCALE, QTY_SCALE, CASH_SCALE, type Cash, type Price, type Qty } from './money.js';

export interface CommissionSchedule {
  /** Cash charged once per fill. */
  perOrder: Cash;
  /** Cash per share, at price scale (4 decimals: $0.0050 a share is 50n). */
  perShare: Price;
  /** Basis points of the fill's value (quantity × price). */
  bps: bigint;
  /** The least a charged fill costs (cash), when the schedule charges anything. */
  minimum: Cash;
  /** The most a fill costs (cash); null for no cap. */
  maximum: Cash | null;
}

export const NO_COMMISSION: CommissionSchedule = { perOrder: 0n, perShare: 0n, bps: 0n, minimum: 0n, maximum: null };

/** qty (scale 6) × price (scale 4) is at scale 10; × bps adds 4 more for the 1/10,000. */
const VALUE_TO_CASH = 10n ** BigInt(QTY_SCALE + PRICE_SCALE - CASH_SCALE);

/** The commission of one fill of `quantity` at `price` under `schedule`. */
export function commissionFor(schedule: CommissionSchedule, quantity: Qty, price: Price): Cash {
  assert(quantity > 0n && price > 0n, 'a fill has a quantity and a price');
  return commissionForValue(schedule, quantity, quantity * price);
}

/**
 * The commission of `quantity` shares worth `value` (Σ quantity × price, exact, at the scale of
 * quantity × price: QTY_SCALE + PRICE_SCALE) under `schedule`: what an order's fills have cost so
 * far, taken together. An order filled in parts pays the increments of this function, so its
 * commissions add up to exactly what one fill of the same shares at the same value would cost:
 * the minimum and the maximum apply to the order, and the rounding happens once per step
 * without ever adding up to more or less than the whole.
 */
export function commissionForValue(schedule: CommissionSchedule, quantity: Qty, value: bigint): Cash {
  assert(quantity > 0n && value > 0n, 'a fill has a quantity and a value');
  assert(schedule.perOrder >= 0n && schedule.perShare >= 0n && schedule.bps >= 0n && schedule.minimum >= 0n, 'a schedule charges, never pays');
  assert(schedule.maximum === null || schedule.maximum >= schedule.minimum, 'the maximum is not below the minimum');
  // Every part at scale 10 + 4 (cash × 10^12), summed exactly, rounded up to the cent once.
  const exact = schedule.perOrder * VALUE_TO_CASH * 10_000n + quantity * schedule.perShare * 10_000n + value * schedule.bps;
  if (exact === 0n) return 0n;
  let charged = divRound(exact, VALUE_TO_CASH * 10_000n, 'up');
  if (charged < schedule.minimum) charged = schedule.minimum;
  if (schedule.maximum !== null && charged > schedule.maximum) charged = schedule.maximum;
  return charged;
}

/**
 * What one more execution of `quantity` worth `value` charges on an order whose fills so far
 * were `filledQuantity` worth `filledValue` and were charged `charged`: the cumulative
 * commission after it, less what was charged. Never negative (the schedule grows with size).
 */
export function commissionIncrement(schedule: CommissionSchedule | null, filledQuantity: Qty, filledValue: bigint, charged: Cash, quantity: Qty, value: bigint): Cash {
  if (schedule === null) return 0n;
  const total = commissionForValue(schedule, filledQuantity + quantity, filledValue + value);
  assert(total >= charged, 'a cumulative commission never shrinks');
  return total - charged;
}

/** Whether a schedule can charge anything. */
export function chargesAnything(schedule: CommissionSchedule): boolean {
  return schedule.perOrder > 0n || schedule.perShare > 0n || schedule.bps > 0n || schedule.minimum > 0n;
}

/** Basis points a schedule may charge at most (a 100 % commission is a typo, not a fee). */
export const COMMISSION_BPS_MAX = 1_000n;

/** A schedule as clients and the order row see it: decimal strings. */
export interface CommissionScheduleJson {
  per_order: string;
  per_share: string;
  bps: string;
  minimum: string;
  maximum: string | null;
}

export function commissionScheduleToJson(s: CommissionSchedule): CommissionScheduleJson {
  return {
    per_order: formatCash(s.perOrder),
    per_share: formatPrice(s.perShare),
    bps: s.bps.toString(),
    minimum: formatCash(s.minimum),
    maximum: s.maximum === null ? null : formatCash(s.maximum),
  };
}

const SCHEDULE_FIELDS = ['per_order', 'per_share', 'bps', 'minimum', 'maximum'] as const;

/**
 * Reads a schedule as a request (a class's `commission` rule) or a stored row gives it: every
 * field optional (0, no cap), amounts as decimal strings or numbers, `bps` a whole number of
 * basis points up to COMMISSION_BPS_MAX. Unknown fields are refused, so a typo never charges
 * nothing silently.
 */
export function parseCommissionSchedule(input: unknown, field = 'commission'): CommissionSchedule {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new ValidationError(`${field} must be an object with ${SCHEDULE_FIELDS.join(', ')}`, { field });
  const raw = input as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!(SCHEDULE_FIELDS as readonly string[]).includes(key)) throw new ValidationError(`${field}.${key} is not part of a commission schedule; its fields are ${SCHEDULE_FIELDS.join(', ')}`, { field: `${field}.${key}` });
  }
  const cash = (key: string) => (raw[key] === undefined ? 0n : parseCash(raw[key], `${field}.${key}`, { allowZero: true }));
  const perShare = raw.per_share === undefined ? 0n : parseDecimal(raw.per_share, { scale: PRICE_SCALE, max: PRICE_MAX, field: `${field}.per_share`, allowZero: true });
  const bps = raw.bps === undefined ? 0n : parseDecimal(raw.bps, { scale: 0, max: COMMISSION_BPS_MAX, field: `${field}.bps`, allowZero: true });
  const maximum = raw.maximum === undefined || raw.maximum === null ? null : parseCash(raw.maximum, `${field}.maximum`, { allowZero: true });
  const schedule: CommissionSchedule = { perOrder: cash('per_order'), perShare, bps, minimum: cash('minimum'), maximum };
  if (maximum !== null && maximum < schedule.minimum) throw new ValidationError(`${field}.maximum must not be below ${field}.minimum`, { field: `${field}.maximum` });
  return schedule;
}
