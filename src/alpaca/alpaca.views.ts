/**
 * papertrade's objects in Alpaca's shapes: the order, the asset id, the statuses, and JSON
 * text with exact decimal numbers. Pure functions: the routes of the facade call them on what
 * the native services return.
 *
 * Alpaca's Trading API writes amounts as decimal strings (we pass ours through); its market
 * data and portfolio history write JSON numbers. Those are rendered here from our decimal
 * strings as number literals, digit for digit, so no value ever passes through a float.
 */
import { createHash } from 'node:crypto';
import { formatFixed, formatPrice, formatQty, type Price } from '../core/money.js';
import { TRAIL_PERCENT_SCALE } from '../core/order-terms.js';
import type { Order } from '../services/orders/orders.service.js';

/** Alpaca's order statuses papertrade's orders take. */
export type AlpacaOrderStatus = 'pending_new' | 'accepted' | 'new' | 'partially_filled' | 'filled' | 'canceled' | 'expired' | 'replaced' | 'rejected';

/**
 * An order's status in Alpaca's words. PENDING (accepted, on its way to the engine) is
 * `pending_new`; an OPEN order that waits for its price rests at the "exchange", `new`; one that
 * waits for a session (a market order placed while the market is closed, an opg or cls order)
 * is `accepted`, as Alpaca says of orders received outside market hours.
 */
export function alpacaStatus(o: Pick<Order, 'status' | 'type' | 'timeInForce' | 'filledQuantity'>): AlpacaOrderStatus {
  switch (o.status) {
    case 'PENDING':
      return 'pending_new';
    case 'OPEN':
      if (o.filledQuantity > 0n) return 'partially_filled';
      return o.type === 'market' || o.timeInForce === 'opg' || o.timeInForce === 'cls' ? 'accepted' : 'new';
    case 'FILLED':
      return 'filled';
    case 'CANCELED':
      return 'canceled';
    case 'EXPIRED':
      return 'expired';
    case 'REPLACED':
      return 'replaced';
    case 'REJECTED':
      return 'rejected';
  }
}

/** Alpaca's `status` query: which native statuses each of open, closed and all covers. */
export const ALPACA_STATUS_QUERY = ['open', 'closed', 'all'] as const;

const assetIds = new Map<string, string>();
const ASSET_IDS_CACHED_MAX = 10_000;

/** A name-based UUID (version 5 layout over SHA-1): the same name always gives the same id. */
function nameUuid(name: string): string {
  const h = createHash('sha1').update(name).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/**
 * An instrument's asset id: a UUID derived from its ticker, so it is the same on every process
 * and every restart without a column to store it.
 */
export function assetId(ticker: string): string {
  let id = assetIds.get(ticker);
  if (id === undefined) {
    id = nameUuid(`papertrade:asset:${ticker}`);
    if (assetIds.size < ASSET_IDS_CACHED_MAX) assetIds.set(ticker, id);
  }
  return id;
}

/**
 * An execution's id (trade_updates `execution_id`, a FILL activity's id part): a UUID derived
 * from the order and the fill's position among its fills, the same however often it is shown.
 */
export function executionId(orderId: string, fillNumber = 1): string {
  return nameUuid(`papertrade:execution:${orderId}:${fillNumber}`);
}

const priceOrNull = (p: Price | null) => (p === null ? null : formatPrice(p));
const timeOrNull = (d: Date | null) => (d === null ? null : d.toISOString());

export type AlpacaOrder = ReturnType<typeof alpacaOrder>;

/**
 * The order as Alpaca's Trading API shows it. An order placed without a client_order_id shows
 * its id there (Alpaca always has one; GET /v2/orders:by_client_order_id finds it by that id).
 */
export function alpacaOrder(o: Order) {
  const status = alpacaStatus(o);
  const updated = o.updatedAt.toISOString();
  return {
    id: o.id,
    client_order_id: o.clientOrderId ?? o.id,
    created_at: o.createdAt.toISOString(),
    updated_at: updated,
    submitted_at: o.createdAt.toISOString(),
    filled_at: timeOrNull(o.filledAt),
    expired_at: timeOrNull(o.expiredAt),
    canceled_at: timeOrNull(o.canceledAt),
    failed_at: status === 'rejected' ? updated : null,
    replaced_at: status === 'replaced' ? updated : null,
    replaced_by: o.replacedBy,
    replaces: o.replaces,
    asset_id: assetId(o.ticker),
    symbol: o.ticker,
    asset_class: 'us_equity' as const,
    notional: null,
    qty: formatQty(o.quantity),
    filled_qty: formatQty(o.filledQuantity),
    filled_avg_price: priceOrNull(o.fillPrice),
    order_class: '' as const,
    order_type: o.type,
    type: o.type,
    side: o.side,
    position_intent: o.side === 'buy' ? ('buy_to_open' as const) : ('sell_to_close' as const),
    time_in_force: o.timeInForce,
    limit_price: priceOrNull(o.limitPrice),
    stop_price: o.type === 'trailing_stop' ? priceOrNull(o.stopLevel) : priceOrNull(o.stopPrice),
    status,
    extended_hours: false,
    legs: null,
    trail_percent: o.trailPercent === null ? null : formatFixed(o.trailPercent, TRAIL_PERCENT_SCALE),
    trail_price: priceOrNull(o.trailPrice),
    hwm: priceOrNull(o.hwm),
    commission: formatFixed(o.commission, 2),
    subtag: null,
    source: null,
    expires_at: null,
  };
}

/** A decimal rendered as a JSON number literal (its digits exactly), inside `jsonText`. */
export class JsonNumber {
  constructor(readonly text: string) {
    if (!/^-?\d+(\.\d+)?$/.test(text)) throw new RangeError(`not a decimal: ${text}`);
  }
}

/** A decimal string (or bigint at `scale`) as a JSON number; trailing zeros of the fraction dropped. */
export function num(value: string | bigint, scale = 0): JsonNumber {
  const text = typeof value === 'bigint' ? formatFixed(value, scale) : value;
  return new JsonNumber(text.includes('.') ? text.replace(/\.?0+$/, '') || '0' : text);
}

/**
 * JSON text for plain data in which JsonNumber values are written as number literals. Only
 * what the facade renders goes through it: objects, arrays, strings, booleans, null, and
 * JsonNumber (a JS number is refused: amounts never are numbers here).
 */
export function jsonText(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (value instanceof JsonNumber) return value.text;
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      // Counts and Unix times are integers; anything else would be a float by mistake.
      if (!Number.isSafeInteger(value)) throw new RangeError(`jsonText takes integers only, got ${value}`);
      return String(value);
    case 'object':
      if (Array.isArray(value)) return `[${value.map(jsonText).join(',')}]`;
      return `{${Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${JSON.stringify(k)}:${jsonText(v)}`)
        .join(',')}}`;
    default:
      throw new RangeError(`jsonText cannot render a ${typeof value}`);
  }
}


// ---------------------------------------------------------------------------------------------
// The order from its native view. Order events carry the native view (decimal strings, ISO
// times); the trade_updates stream (alpaca.stream.*.ts) shows them in Alpaca's shape. These
// imports sit here, with the functions that use them, so this addition leaves the rest of the
// file as it was.
// ---------------------------------------------------------------------------------------------
import { cashFromDb, fromDb as decimalFromView, priceFromDb, qtyFromDb } from '../core/money.js';
import type { OrderView } from '../services/orders/order-view.js';

const priceFromView = (p: string | null): Price | null => (p === null ? null : priceFromDb(p));
const timeFromView = (t: string | null): Date | null => (t === null ? null : new Date(t));

/**
 * The order a native order view shows (GET /orders/{id}'s body, the data of every order event):
 * its decimal strings read back at their scales, exactly, and its times back to Dates. The view
 * holds every field alpacaOrder reads (only the quote at acceptance is not shown), so an order
 * rendered from its event is the order GET /v2/orders/{id} renders.
 */
export function orderFromView(v: OrderView): Order {
  return {
    id: v.id,
    userId: v.user_id,
    clientOrderId: v.client_order_id,
    ticker: v.ticker,
    side: v.side,
    type: v.type,
    timeInForce: v.time_in_force,
    quantity: qtyFromDb(v.quantity),
    limitPrice: priceFromView(v.limit_price),
    stopPrice: priceFromView(v.stop_price),
    trailPrice: priceFromView(v.trail_price),
    trailPercent: v.trail_percent === null ? null : decimalFromView(v.trail_percent, TRAIL_PERCENT_SCALE),
    hwm: priceFromView(v.hwm),
    stopLevel: priceFromView(v.stop_level),
    // PARTIALLY_FILLED is how the view shows an OPEN order with shares filled.
    status: v.status === 'PARTIALLY_FILLED' ? 'OPEN' : v.status,
    reservedAmount: cashFromDb(v.reserved_amount),
    commission: cashFromDb(v.commission),
    // Events written before fill models (in the log for its retention) have neither field.
    commissionCharged: v.commission_charged === undefined ? 0n : cashFromDb(v.commission_charged),
    // Not shown in the view, and not read by alpacaOrder.
    commissionSchedule: null,
    filledValue: 0n,
    lastFillQuoteAt: null,
    fillModel: v.fill_model ?? 'ideal',
    quotePrice: null,
    fillPrice: priceFromView(v.fill_price),
    filledQuantity: qtyFromDb(v.filled_quantity),
    filledAt: timeFromView(v.filled_at),
    triggeredAt: timeFromView(v.triggered_at),
    canceledAt: timeFromView(v.canceled_at),
    expiredAt: timeFromView(v.expired_at),
    rejectReason: v.reject_reason,
    cancelReason: v.cancel_reason,
    replaces: v.replaces,
    replacedBy: v.replaced_by,
    createdAt: new Date(v.created_at),
    updatedAt: new Date(v.updated_at),
  };
}

/** A native order view in Alpaca's shape: alpacaOrder of the order the view shows. */
export function alpacaOrderFromView(v: OrderView): AlpacaOrder {
  return alpacaOrder(orderFromView(v));
}
