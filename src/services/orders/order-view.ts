/**
 * The order as clients see it (GET /orders/{id}, and the data of every order event): decimal
 * strings at the column's scale (quantities without trailing zeros), ISO 8601 UTC times with
 * milliseconds. orders.repository's `orderViewSql` renders the same view in SQL for the
 * statements that write an event in the same statement as the change; test/events.test.ts
 * holds the two to each other.
 */
import { formatCash, formatFixed, formatPrice, formatQty, type Price } from '../../core/money.js';
import { TRAIL_PERCENT_SCALE } from '../../core/order-terms.js';
import { viewStatus } from '../../core/orders.js';
import type { Fill, Order } from './orders.service.js';

const priceOrNull = (p: Price | null) => (p === null ? null : formatPrice(p));
const timeOrNull = (d: Date | null) => (d === null ? null : d.toISOString());

export type OrderView = ReturnType<typeof orderBody>;

export function orderBody(o: Order) {
  return {
    id: o.id,
    user_id: o.userId,
    client_order_id: o.clientOrderId,
    ticker: o.ticker,
    side: o.side,
    type: o.type,
    time_in_force: o.timeInForce,
    quantity: formatQty(o.quantity),
    limit_price: priceOrNull(o.limitPrice),
    stop_price: priceOrNull(o.stopPrice),
    trail_price: priceOrNull(o.trailPrice),
    trail_percent: o.trailPercent === null ? null : formatFixed(o.trailPercent, TRAIL_PERCENT_SCALE),
    hwm: priceOrNull(o.hwm),
    stop_level: priceOrNull(o.stopLevel),
    status: viewStatus(o.status, o.filledQuantity),
    reserved_amount: formatCash(o.reservedAmount),
    commission: formatCash(o.commission),
    commission_charged: formatCash(o.commissionCharged),
    fill_model: o.fillModel,
    fill_price: priceOrNull(o.fillPrice),
    filled_quantity: formatQty(o.filledQuantity),
    filled_at: timeOrNull(o.filledAt),
    triggered_at: timeOrNull(o.triggeredAt),
    canceled_at: timeOrNull(o.canceledAt),
    expired_at: timeOrNull(o.expiredAt),
    reject_reason: o.rejectReason,
    cancel_reason: o.cancelReason,
    replaces: o.replaces,
    replaced_by: o.replacedBy,
    created_at: o.createdAt.toISOString(),
    updated_at: o.updatedAt.toISOString(),
  };
}


/** One fill as GET /orders/{id}/fills shows it: what it executed and why at that price. */
export function fillBody(f: Fill) {
  return {
    id: f.id,
    order_id: f.orderId,
    price: formatPrice(f.price),
    quantity: formatQty(f.quantity),
    amount: formatCash(f.amount),
    commission: formatCash(f.commission),
    executed_at: f.executedAt.toISOString(),
    explanation: {
      model: f.model,
      model_version: f.modelVersion,
      params: f.modelParams ?? {},
      quote: f.quote,
      quote_age_ms: f.quoteAgeMs,
      slippage_bps: f.slippageBps,
      reason: f.reason,
    },
  };
}
