/** Small pieces the trader's sections share: order wording, times. (Refusals and request keys: ../kit.ts.) */
import { price, qty } from '../format.js';
import type { Order } from './types.js';

/** The price terms of an order in words: "limit 140.00", "stop 175.00, limit 176.00", "trail 2.50%". */
export function termsText(o: Pick<Order, 'type' | 'limit_price' | 'stop_price' | 'trail_price' | 'trail_percent'>): string {
  const parts: string[] = [];
  if (o.stop_price !== null) parts.push(`stop ${price(o.stop_price)}`);
  if (o.limit_price !== null) parts.push(`limit ${price(o.limit_price)}`);
  if (o.trail_price !== null) parts.push(`trail ${price(o.trail_price)}`);
  if (o.trail_percent !== null) parts.push(`trail ${o.trail_percent}%`);
  return parts.length ? parts.join(', ') : 'at market';
}

/** "AAPL buy 5 limit 140.00": how buttons and messages name an order. */
export function describeOrder(o: Order): string {
  return `${o.ticker} ${o.side} ${qty(o.quantity)} ${o.type === 'market' ? 'market' : termsText(o)}`;
}

/** Why a final order ended, in words (null when it filled or nothing more is known). */
export function outcomeText(o: Order): string | null {
  if (o.status === 'REJECTED') return o.reject_reason ? `rejected: ${o.reject_reason}` : 'rejected';
  if (o.status === 'CANCELED') return o.cancel_reason ? `canceled: ${o.cancel_reason}` : 'canceled by you';
  if (o.status === 'EXPIRED') return 'expired at the close';
  if (o.status === 'REPLACED') return 'replaced';
  return null;
}

/** Epoch milliseconds of an ISO time, or NaN. */
export const ms = (iso: string): number => Date.parse(iso);

/** "in 2 h 5 min" / "in 40 s" / "now": a duration until `target`, for the clock. */
export function until(target: string, now = Date.now()): string {
  const diff = ms(target) - now;
  if (!Number.isFinite(diff)) return '';
  if (diff <= 0) return 'now';
  const minutes = Math.round(diff / 60_000);
  if (minutes < 1) return `in ${Math.max(1, Math.round(diff / 1000))} s`;
  if (minutes < 60) return `in ${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `in ${hours} h ${minutes % 60} min`;
  return `in ${Math.round(hours / 24)} days`;
}

/** A decimal string as a person would type it into a field: "140.0000" → "140", "2.50" → "2.5". */
export function plainDecimal(value: string | null): string {
  if (value === null) return '';
  return value.includes('.') ? value.replace(/\.?0+$/, '') : value;
}

const shortFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
const clockFormat = new Intl.DateTimeFormat(undefined, { weekday: 'short', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

/** "Dec 2, 05:12:37 PM": a time in a table, where the year would only take room. */
export function shortDateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : shortFormat.format(d);
}

/** "Thu, Dec 3, 05:00 AM": a session edge. */
export function clockTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : clockFormat.format(d);
}
