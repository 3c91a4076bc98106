/**
 * Order events: what the OMS and the trading engine append to the event log for an order's
 * transitions. The data is the order as GET /orders/{id} shows it after the transition (a fill
 * adds the fill and the position it leaves).
 */
import type { EventRecord, EventType } from '../events/event-log.js';
import type { NewEvent } from '../events/events.repository.js';
import { orderBody } from './order-view.js';
import type { InsertedOrderRow } from './orders.repository.js';
import type { Order } from './orders.service.js';

/** The event of an order that has just reached `order.status` (by the transition `type`). */
export function orderEvent(type: EventType, order: Order, extra?: Record<string, unknown>): NewEvent {
  return { userId: order.userId, type, dataJson: JSON.stringify(extra ? { ...orderBody(order), ...extra } : orderBody(order)) };
}

/** The order.new event an accept statement appended with the order. */
export function insertedEvent(row: InsertedOrderRow): EventRecord {
  return { userId: row.user_id, seq: Number(row.event_seq), type: 'order.new', at: row.event_at.toISOString(), dataJson: row.event_data };
}
