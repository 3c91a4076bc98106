/**
 * Order status changes announced on a channel (best effort: PostgreSQL holds the state, so a
 * listener that misses one reads the order again). One JSON message per change.
 */
import type { Channel } from '../../infra/channel.js';
import { formatPrice } from '../../core/money.js';
import type { Order } from './orders.service.js';

export interface OrderUpdate {
  order_id: string;
  user_id: string;
  status: string;
  ticker: string;
  side: string;
  fill_price: string | null;
  reject_reason: string | null;
  updated_at: string;
}

export function toUpdate(o: Order): OrderUpdate {
  return {
    order_id: o.id,
    user_id: o.userId,
    status: o.status,
    ticker: o.ticker,
    side: o.side,
    fill_price: o.fillPrice === null ? null : formatPrice(o.fillPrice),
    reject_reason: o.rejectReason,
    updated_at: o.updatedAt.toISOString(),
  };
}

/** Announces the orders' current statuses; never throws (an announcement is not the record). */
export async function announce(channel: Channel, orders: readonly Order[], onError: (err: unknown) => void): Promise<void> {
  if (orders.length === 0) return;
  await channel.publish(orders.map((o) => JSON.stringify(toUpdate(o)))).catch(onError);
}
