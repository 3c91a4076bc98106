/**
 * Display formatting of the API's decimal strings, done on the strings (and bigint where
 * arithmetic is needed): an amount is never turned into a floating-point number, so what the
 * page shows is exactly what the server stored.
 */
import { formatFixed, fromDb } from '../../src/core/money.js';

const DECIMAL_RE = /^(-?)(\d+)(?:\.(\d+))?$/;

function groupThousands(digits: string): string {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/**
 * `"12345.6"` → `"12,345.60"` with `decimals` places (padded, never rounded: when the value has
 * more places than asked they are all kept, so nothing is hidden). Anything not a decimal
 * string comes back as it is.
 */
export function decimal(value: string | null | undefined, decimals = 2): string {
  if (value === null || value === undefined) return '—';
  const m = DECIMAL_RE.exec(value);
  if (!m) return value;
  const [, sign, int, frac = ''] = m;
  const trimmed = frac.replace(/0+$/, '');
  const places = Math.max(decimals, trimmed.length);
  const fraction = (trimmed + '0'.repeat(places)).slice(0, places);
  return `${sign === '-' && /[1-9]/.test(int! + frac) ? '−' : ''}${groupThousands(int!)}${places ? `.${fraction}` : ''}`;
}

export const money = (value: string | null | undefined): string => (value === null || value === undefined ? '—' : `$${decimal(value, 2)}`.replace('$−', '−$'));
/**
 * Prices: 2 places when that says it all ("175.00"), else the API's 4 ("170.0780", not
 * "170.078"), so a column of prices lines up.
 */
export function price(value: string | null | undefined): string {
  if (value === null || value === undefined) return '—';
  const fraction = DECIMAL_RE.exec(value)?.[3] ?? '';
  return decimal(value, fraction.replace(/0+$/, '').length > 2 ? 4 : 2);
}
/** Quantities: as many places as they have, none when whole. */
export const qty = (value: string | null | undefined): string => decimal(value, 0);

/** `+1.23%` / `−0.40%` from a decimal percentage string. */
export function pct(value: string | null | undefined): string {
  if (value === null || value === undefined) return '—';
  const text = decimal(value, 2);
  return `${/^[1-9]|^0\.\d*[1-9]/.test(text) ? '+' : ''}${text}%`;
}

/** The sign of a decimal string, for colouring gains and losses. */
export function sign(value: string | null | undefined): -1 | 0 | 1 {
  if (!value || !DECIMAL_RE.test(value)) return 0;
  if (value.startsWith('-')) return /[1-9]/.test(value) ? -1 : 0;
  return /[1-9]/.test(value) ? 1 : 0;
}

/** Exact arithmetic on decimal strings at `scale` places (for sums shown on the page). */
export const toFixedBig = (value: string, scale: number): bigint => fromDb(value, scale);
export const fromFixedBig = (value: bigint, scale: number): string => (value < 0n ? `-${formatFixed(-value, scale)}` : formatFixed(value, scale));

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const shortTime = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : timeFormat.format(d);
}

export function time(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : shortTime.format(d);
}
