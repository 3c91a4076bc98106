/**
 * Schema pieces shared by the routes. Money, prices and quantities arrive as a JSON number or
 * a decimal string and are parsed exactly by core/money (the schema only bounds their shape);
 * they leave as decimal strings.
 */
import { Type } from 'typebox';
import { ValidationError } from '../core/errors.js';

export const DecimalInput = Type.Union([Type.String({ maxLength: 40 }), Type.Number()], {
  description: 'a positive decimal, as a JSON number or a string (e.g. 10 or "1575.00")',
});
export const CashString = Type.String({ pattern: '^-?\\d+\\.\\d{2}$', examples: ['1575.00'] });
export const PriceString = Type.String({ pattern: '^\\d+\\.\\d{4}$', examples: ['152.0000'] });
export const QtyString = Type.String({ pattern: '^\\d+(\\.\\d+)?$', examples: ['10', '0.5'] });
// Strictly 8-4-4-4-12: PostgreSQL's uuid input refuses other hyphen placements with an error.
export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
export const Uuid = Type.String({ pattern: UUID_PATTERN, maxLength: 36, description: 'a UUID (8-4-4-4-12 hexadecimal digits)' });
export const Timestamp = Type.String({ format: 'date-time' });
export const Cursor = Type.String({ pattern: '^[A-Za-z0-9_-]{1,200}$', description: 'a cursor the previous page returned as next' });
export const LimitQuery = Type.String({ pattern: '^[0-9]{1,4}$', description: 'a whole number from 1 to 500 (default 50)' });
/** A ticker as a client may write it: any case (answers give the listed form, e.g. AAPL). */
export const TickerInput = Type.String({ pattern: '^[A-Za-z][A-Za-z0-9.]{0,9}$', description: 'a ticker such as AAPL or BRK.B (any case)' });
/** A client's key for a request (client_order_id, Idempotency-Key). */
export const IdempotencyKey = Type.String({
  minLength: 1,
  maxLength: 128,
  pattern: '^[\\x21-\\x7e]+$',
  description: '1 to 128 printable ASCII characters without spaces',
});

export const UserIdParams = Type.Object({ id: Uuid }, { additionalProperties: false });

export const LIST_LIMIT_DEFAULT = 50;
export const LIST_LIMIT_MAX = 500;

export function parseLimit(raw: string | undefined, max = LIST_LIMIT_MAX, fallback = LIST_LIMIT_DEFAULT): number {
  if (raw === undefined) return fallback;
  const limit = Number(raw);
  if (!Number.isInteger(limit) || limit < 1 || limit > max) {
    throw new ValidationError(`limit must be an integer from 1 to ${max}`, { field: 'limit' });
  }
  return limit;
}

export function iso(date: Date): string {
  return date.toISOString();
}
