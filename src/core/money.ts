/**
 * Exact money arithmetic. Cash, prices and share quantities are bigint fixed-point integers so that
 * no value ever passes through binary floating point: cash in cents (scale 2), prices in 1/10_000
 * (scale 4) and quantities in 1/1_000_000 (scale 6). This module is pure; it parses request input,
 * parses and formats PostgreSQL NUMERIC text, and does the few roundings the brokerage needs, each
 * in a single explicit step.
 */
import { ValidationError, assert } from './errors.js';

export type Cash = bigint;
export type Price = bigint;
export type Qty = bigint;

export const CASH_SCALE = 2;
export const PRICE_SCALE = 4;
export const QTY_SCALE = 6;

export const CASH_MAX: Cash = 1_000_000_000_000_00n;
export const PRICE_MAX: Price = 1_000_000_0000n;
export const QTY_MAX: Qty = 1_000_000_000_000000n;
export const ZERO = 0n;

// Powers of ten up to 10^18, computed once: pow10 runs for every amount read or written.
const POW10: readonly bigint[] = Array.from({ length: 19 }, (_, i) => 10n ** BigInt(i));

function pow10(scale: number): bigint {
  const power = POW10[scale];
  // Messages are built only on failure: these checks sit on the hot path of every order.
  if (power === undefined) assert(false, `scale must be an integer from 0 to 18, got ${scale}`);
  return power;
}

// ---------------------------------------------------------------------------------------------
// Request input
// ---------------------------------------------------------------------------------------------

export interface DecimalSpec {
  scale: number;
  max: bigint;
  allowZero?: boolean;
  field: string;
}

/** Plain unsigned decimals only: no sign, exponent, whitespace, leading zeros or bare dot. */
const REQUEST_DECIMAL = /^(0|[1-9]\d*)(?:\.(\d+))?$/;
const MAX_INPUT_LENGTH = 40;

/**
 * Parses a request value given as a JSON number or a decimal string into a fixed-point bigint.
 *
 * A number is read through `String(n)`, which yields the shortest text that round-trips to the same
 * double. Every value up to the maxima below has at most 15 significant digits, so that text is the
 * decimal the client wrote, and anything `String` renders with an exponent (1e21, 1e-7) is refused
 * by the same pattern as strings are.
 */
export function parseDecimal(input: unknown, spec: DecimalSpec): bigint {
  const { scale, max, field } = spec;
  const details = { field };
  let text: string;
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) throw new ValidationError(`${field} must be a finite number`, details);
    text = String(input);
  } else if (typeof input === 'string') {
    text = input;
  } else {
    throw new ValidationError(`${field} must be a decimal number or a decimal string`, details);
  }

  if (text.length > MAX_INPUT_LENGTH) {
    throw new ValidationError(`${field} must be at most ${MAX_INPUT_LENGTH} characters`, details);
  }
  const match = REQUEST_DECIMAL.exec(text);
  if (!match) {
    throw new ValidationError(
      `${field} must be a plain decimal such as "12.50" (no sign, exponent or spaces)`,
      details,
    );
  }
  const whole = match[1] ?? '0';
  const fraction = match[2] ?? '';
  // Extra digits are refused even when they are zeros, so clients learn the precision up front.
  if (fraction.length > scale) {
    throw new ValidationError(`${field} must have at most ${scale} decimals`, details);
  }

  const value = BigInt(whole) * pow10(scale) + BigInt(fraction.padEnd(scale, '0') || '0');
  if (value > max) throw new ValidationError(`${field} must be at most ${formatFixed(max, scale)}`, details);
  if (value === 0n && !spec.allowZero) throw new ValidationError(`${field} must be greater than zero`, details);
  return value;
}

export function parseCash(input: unknown, field = 'amount', opts?: { allowZero?: boolean }): Cash {
  return parseDecimal(input, { scale: CASH_SCALE, max: CASH_MAX, allowZero: opts?.allowZero ?? false, field });
}

export function parsePrice(input: unknown, field = 'price'): Price {
  return parseDecimal(input, { scale: PRICE_SCALE, max: PRICE_MAX, field });
}

export function parseQty(input: unknown, field = 'quantity'): Qty {
  return parseDecimal(input, { scale: QTY_SCALE, max: QTY_MAX, field });
}

// ---------------------------------------------------------------------------------------------
// Database values
// ---------------------------------------------------------------------------------------------

const DB_DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;

/**
 * Parses PostgreSQL NUMERIC text exactly. Database values are trusted, so anything unexpected
 * (NaN, garbage, a non-zero digit beyond the scale) is a programmer error and fails an assertion
 * rather than raising a validation error.
 */
export function fromDb(text: string, scale: number): bigint {
  const unit = pow10(scale);
  const match = typeof text === 'string' ? DB_DECIMAL.exec(text) : null;
  if (!match) assert(false, `not a NUMERIC value: ${JSON.stringify(text)}`);
  const [, sign, whole = '0', fraction = ''] = match;
  const kept = fraction.slice(0, scale);
  // A column with a larger scale is fine as long as nothing would be lost by dropping the tail.
  if (fraction.length > scale && !/^0*$/.test(fraction.slice(scale))) {
    assert(false, `NUMERIC ${text} has more than ${scale} significant decimals`);
  }
  const magnitude = BigInt(whole) * unit + BigInt(kept.padEnd(scale, '0') || '0');
  return sign === '-' ? -magnitude : magnitude;
}

export function cashFromDb(text: string): Cash {
  return fromDb(text, CASH_SCALE);
}

export function priceFromDb(text: string): Price {
  return fromDb(text, PRICE_SCALE);
}

export function qtyFromDb(text: string): Qty {
  return fromDb(text, QTY_SCALE);
}

// ---------------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------------

/** Renders with exactly `scale` decimals, a leading '-' for negatives and no digit grouping. */
export function formatFixed(value: bigint, scale: number): string {
  pow10(scale); // Validates the scale.
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString().padStart(scale + 1, '0');
  const whole = digits.slice(0, digits.length - scale);
  const text = scale === 0 ? whole : `${whole}.${digits.slice(digits.length - scale)}`;
  return negative ? `-${text}` : text;
}

export function formatCash(c: Cash): string {
  return formatFixed(c, CASH_SCALE);
}

export function formatPrice(p: Price): string {
  return formatFixed(p, PRICE_SCALE);
}

/** Quantities read best without padding, so trailing zeros (and a bare dot) are dropped. */
export function formatQty(q: Qty): string {
  return formatFixed(q, QTY_SCALE).replace(/\.?0+$/, '');
}

// PostgreSQL parses a plain decimal string into NUMERIC exactly, so the fixed form is the SQL form.
export const cashToSql = (c: Cash): string => formatFixed(c, CASH_SCALE);
export const priceToSql = (p: Price): string => formatFixed(p, PRICE_SCALE);
export const qtyToSql = (q: Qty): string => formatFixed(q, QTY_SCALE);

// ---------------------------------------------------------------------------------------------
// Arithmetic
// ---------------------------------------------------------------------------------------------

/** 'up' is toward +infinity, 'down' toward -infinity, 'half-up' rounds halves away from zero. */
export type Rounding = 'up' | 'down' | 'half-up';

/** Integer division with an explicit rounding rule; bigint `/` alone truncates toward zero. */
export function divRound(numerator: bigint, denominator: bigint, mode: Rounding): bigint {
  if (denominator <= 0n) assert(false, `denominator must be positive, got ${denominator}`);
  const quotient = numerator / denominator;
  const remainder = numerator % denominator; // Carries the sign of the numerator.
  if (remainder === 0n) return quotient;
  switch (mode) {
    case 'up':
      return remainder > 0n ? quotient + 1n : quotient;
    case 'down':
      return remainder < 0n ? quotient - 1n : quotient;
    case 'half-up': {
      const twiceRemainder = remainder < 0n ? -2n * remainder : 2n * remainder;
      if (twiceRemainder < denominator) return quotient;
      return numerator < 0n ? quotient - 1n : quotient + 1n;
    }
  }
}

/** qty × price has scale 6 + 4 = 10; this divisor brings it to cash scale 2. */
const NOTIONAL_DIVISOR = pow10(QTY_SCALE + PRICE_SCALE - CASH_SCALE);
const BPS = 10_000n;

export function notional(qty: Qty, price: Price, mode: Rounding): Cash {
  return divRound(qty * price, NOTIONAL_DIVISOR, mode);
}

/*
 * The cash a fill moves is quantity × price, which has 10 decimals, brought to the cent. That
 * rounding always goes against the account: a buyer pays the exact value rounded UP, a seller
 * receives it rounded DOWN. Rounding half-up (as papertrade did before 0.2) lets a client pick
 * quantities whose value rounds in its favour on both legs — up to a cent per order, out of
 * nothing, repeatable at any rate. Against the account, no sequence of fills can end with more
 * cash and shares than their exact value; the sub-cent difference stays with the house and is
 * visible in the fill (its amount against quantity × price).
 */

/** What a buy of `qty` at `price` costs: the exact value rounded up to the cent. */
export function buyCost(qty: Qty, price: Price): Cash {
  return notional(qty, price, 'up');
}

/** What a sell of `qty` at `price` credits: the exact value rounded down to the cent. */
export function sellProceeds(qty: Qty, price: Price): Cash {
  return notional(qty, price, 'down');
}

/** qty × price exactly, as a decimal with the trailing zeros dropped (for messages: "0.00449"). */
export function formatExactNotional(qty: Qty, price: Price): string {
  return formatFixed(qty * price, QTY_SCALE + PRICE_SCALE).replace(/(\.\d{2}\d*?)0+$/, '$1');
}

/**
 * True when qty × price (exact, unrounded) is at least `minimum`: the minimum-notional rule
 * compares the order's true value, so no rounding can let a smaller order through.
 */
export function notionalAtLeast(qty: Qty, price: Price, minimum: Cash): boolean {
  return qty * price >= minimum * NOTIONAL_DIVISOR;
}

/**
 * The most shares (at the quantity scale) whose value at `price` is at most `amount`: what an
 * order for a cash amount (Alpaca's `notional`) buys at that price. Rounded down, so the value
 * never exceeds the amount asked; 0 when the amount buys less than one quantity unit.
 */
export function quantityForNotional(amount: Cash, price: Price): Qty {
  if (amount < 0n || price <= 0n) assert(false, `amount must be non-negative and price positive, got ${amount} and ${price}`);
  return divRound(amount * NOTIONAL_DIVISOR, price, 'down');
}

/**
 * The cash held for a market buy: quantity × price × (1 + bufferBps / 10_000), rounded up to the
 * cent in one step so the hold never falls short of the exact buffered amount.
 */
export function reservationFor(qty: Qty, price: Price, bufferBps: bigint): Cash {
  if (bufferBps < 0n) assert(false, `bufferBps must be non-negative, got ${bufferBps}`);
  return divRound(qty * price * (BPS + bufferBps), NOTIONAL_DIVISOR * BPS, 'up');
}

/**
 * Average cost after adding addQty at price to a position of oldQty at oldAvg, rounded half-up to
 * the price scale. Quantities scale out: (scale 6 × scale 4) / scale 6 = scale 4.
 */
export function weightedAvgCost(oldQty: Qty, oldAvg: Price, addQty: Qty, price: Price): Price {
  if (oldQty < 0n || addQty < 0n) assert(false, `quantities must be non-negative, got ${oldQty} and ${addQty}`);
  assert(oldQty + addQty > 0n, 'weighted average needs a positive total quantity');
  if (oldQty === 0n) return price;
  return divRound(oldQty * oldAvg + addQty * price, oldQty + addQty, 'half-up');
}

export function sum(values: Iterable<bigint>): bigint {
  let total = 0n;
  for (const value of values) total += value;
  return total;
}

/** Parses a basis-points setting from configuration: a plain integer from 0 to 10000. */
export function parseBps(input: string, field: string): bigint {
  if (typeof input !== 'string' || !/^(0|[1-9]\d{0,4})$/.test(input)) {
    throw new ValidationError(`${field} must be a whole number of basis points from 0 to 10000`, { field });
  }
  const bps = BigInt(input);
  if (bps > BPS) {
    throw new ValidationError(`${field} must be a whole number of basis points from 0 to 10000`, { field });
  }
  return bps;
}
