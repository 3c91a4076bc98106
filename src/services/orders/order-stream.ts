/**
 * The order stream: the pipe between the OMS and the trading engine. PostgreSQL holds the
 * truth; an entry only says "look at order X". Entries are written after the order's commit,
 * so an engine never sees an order that is not in the database; a lost entry is re-published
 * by the reconciler. The stream is bounded with `MAXLEN ~`.
 */
import type { Redis } from 'ioredis';
import type { Keys } from '../../infra/keys.js';
import { formatQty } from '../../core/money.js';
import type { Order } from './orders.service.js';

/** Entries kept in the stream; acknowledged ones beyond this are trimmed. */
export const ORDER_STREAM_LENGTH_MAX = 100_000;
/** Entries kept in the dead-letter stream. */
export const DEAD_LETTER_LENGTH_MAX = 10_000;

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

/**
 * Publishes orders to the stream in one round trip; with `announce`, also their status on the
 * updates channel (the OMS does on acceptance; the reconciler's re-publish is no news).
 */
export async function publishOrders(
  redis: Redis,
  keys: Keys,
  orders: readonly Order[],
  options: { announce?: boolean } = {},
): Promise<void> {
  if (orders.length === 0) return;
  const pipeline = redis.pipeline();
  if (options.announce) for (const o of orders) pipeline.publish(keys.orderUpdatesChannel(), JSON.stringify(toUpdate(o, null)));
  for (const o of orders) {
    pipeline.xadd(
      keys.orderStream(),
      'MAXLEN',
      '~',
      ORDER_STREAM_LENGTH_MAX,
      '*',
      'order_id',
      o.id,
      'user_id',
      o.userId,
      'ticker',
      o.ticker,
      'qty',
      formatQty(o.quantity),
      'type',
      o.type,
      'side',
      o.side,
    );
  }
  const results = await pipeline.exec();
  const failed = results?.find(([err]) => err);
  if (failed) throw failed[0];
}

export function toUpdate(o: Order, fillPrice: string | null): OrderUpdate {
  return {
    order_id: o.id,
    user_id: o.userId,
    status: o.status,
    ticker: o.ticker,
    side: o.side,
    fill_price: fillPrice,
    reject_reason: o.rejectReason,
    updated_at: o.updatedAt.toISOString(),
  };
}

/** Announces status changes on the updates channel (best effort: pub/sub is not durable). */
export async function publishUpdates(redis: Redis, keys: Keys, updates: readonly OrderUpdate[]): Promise<void> {
  if (updates.length === 0) return;
  const pipeline = redis.pipeline();
  for (const u of updates) pipeline.publish(keys.orderUpdatesChannel(), JSON.stringify(u));
  await pipeline.exec();
}
